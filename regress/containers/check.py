#!/usr/bin/python3
"""`make check-containers`: build Dockerfile.multi and run docker-compose.yml.

    check.py [--keep] [--port 5003]

There is no Docker engine on the test machines, so the committed files
run under rootful podman and buildah:

  1. base images: debian:bookworm and debian:bookworm-slim stand-ins from
     `debootstrap --variant=minbase bookworm` (tarballs cached in
     /var/cache/shortd-containers), imported under the official names;
  2. stand-ins for the official mariadb:10.11 and nginx:stable images
     (regress/containers/{mariadb,nginx}/), built from that base;
  3. Dockerfile.multi built with buildah as the compose file's `shortd`
     image;
  4. `docker-compose config -q` (Debian's docker-compose 1.29) validates
     docker-compose.yml; `podman-compose up -d` runs it as it is;
  5. once every container is healthy (their own HEALTHCHECKs, run with
     `podman healthcheck run`), the e2e cases of make check run against
     host port 5003: every test_* of regress/e2e/test_{auth,shortener,
     classic,interop}.py but the few that restart shortd with another
     configuration (NOT_HERE below); test_daemon.py and test_health.py
     drive a shortd process of their own and stay in make check;
  6. the image: no compiler, no headers, a non-root user, the schema;
     its size is printed; TERM stops shortd as PID 1 with exit status 0;
  7. `podman-compose down` (volumes kept) and up again with three
     shortener replicas: what was created before is still there, and
     nginx spreads requests over all three;
  8. everything torn down: containers, volume, network, and the images
     this run's builds replaced (the tagged images stay as a cache).

Prints "ok NAME" / "FAIL NAME" per case, the time of each phase, and
"N passed, N failed"; exits 1 if anything failed.  Container logs go to
regress/out/containers/.  CONTAINERS_CONF is set to containers.conf
beside this file (see there why).
"""

import argparse
import glob
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import traceback

import pymysql
import requests
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "regress"))

import run as runmod      # noqa: E402  (Tally, collect_e2e, case limit)
import stack as stackmod  # noqa: E402  (the HTTP helpers the cases use)

CACHE = "/var/cache/shortd-containers"
BASE_TAR = os.path.join(CACHE, "debian-bookworm-minbase.tar")
SLIM_TAR = os.path.join(CACHE, "debian-bookworm-slim-minbase.tar")
OUT = os.path.join(TOP, "regress", "out", "containers")
COMPOSE = os.path.join(TOP, "docker-compose.yml")
SCALE3 = os.path.join(HERE, "scale-shortener.yml")
PROJECT = "shortd"
NETWORK = "wscb_network"
VOLUME = PROJECT + "_db_data"
IMAGE = "localhost/shortd:latest"
BUILD_IMAGE = "localhost/shortd-build-stage:latest"
STANDINS = [
    ("docker.io/library/mariadb:10.11", os.path.join(HERE, "mariadb")),
    ("docker.io/library/nginx:stable", os.path.join(HERE, "nginx")),
]

# e2e cases that need what only the private stack of make check has.
E2E_FILES = ("test_auth.py", "test_shortener.py", "test_classic.py",
             "test_interop.py")
NOT_HERE = {
    "test_shortener.py:test_body_limit_in_shortd":
        "restarts shortd with max_body 1024",
    "test_shortener.py:test_redirect_options":
        "restarts shortd with other redirect settings",
}

BUILDAH = ["buildah", "bud", "--isolation", "chroot", "--network", "host",
           "--pull-never", "--layers"]


def say(msg):
    print("# " + msg, flush=True)


class Failed(Exception):
    pass


def run(cmd, check=True, timeout=900, log=None, env=None, quiet=False):
    """Run cmd -> CompletedProcess (text).  Output goes to log (a file
    name under OUT) when given; a failure shows the tail."""
    t0 = time.time()
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, errors="replace",
                       timeout=timeout, env=env, cwd=TOP)
    if log:
        with open(os.path.join(OUT, log), "a") as f:
            f.write("$ %s\n%s\n" % (" ".join(cmd), p.stdout))
    if check and p.returncode != 0:
        raise Failed("%s: exit %d after %.0fs\n%s" % (
            " ".join(cmd), p.returncode, time.time() - t0,
            p.stdout[-6000:]))
    if not quiet and not log and p.stdout.strip() and p.returncode != 0:
        sys.stdout.write(runmod.indent(p.stdout[-2000:]))
    return p


# ---------------------------------------------------------------- images

def apt_mirror():
    """The Debian mirror this machine's apt uses (debootstrap's too)."""
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        with open(path) as f:
            text = f.read()
        for para in text.split("\n\n"):
            if re.search(r"^Suites:.*\bbookworm\b", para, re.M) and \
                    "security" not in para:
                m = re.search(r"^URIs:\s*(\S+)", para, re.M)
                if m:
                    return m.group(1)
    for path in ["/etc/apt/sources.list"] + sorted(
            glob.glob("/etc/apt/sources.list.d/*.list")):
        try:
            with open(path) as f:
                for line in f:
                    m = re.match(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+bookworm\s",
                                 line)
                    if m:
                        return m.group(1)
        except OSError:
            pass
    raise Failed("no Debian bookworm mirror in /etc/apt/sources.list*")


# As in the official debian images: no .deb files or package caches
# left behind by apt in image layers.
DOCKER_CLEAN = """\
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
"""

SLIM_DPKG = """\
# As in the official -slim images: no documentation, manual pages or
# translations from packages installed later.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
"""


def make_base_tarballs():
    """debootstrap once; the tarballs are cached across runs."""
    if os.path.exists(BASE_TAR) and os.path.exists(SLIM_TAR):
        say("base tarballs cached in %s" % CACHE)
        return
    os.makedirs(CACHE, exist_ok=True)
    root = os.path.join(CACHE, "rootfs.tmp")
    shutil.rmtree(root, ignore_errors=True)
    mirror = apt_mirror()
    t0 = time.time()
    run(["debootstrap", "--variant=minbase", "bookworm", root, mirror],
        log="debootstrap.log", timeout=1800)
    say("debootstrap: %.0fs" % (time.time() - t0))
    for d in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for p in glob.glob(os.path.join(root, d, "*")):
            if os.path.isfile(p):
                os.unlink(p)
    with open(os.path.join(root, "etc/apt/apt.conf.d/docker-clean"),
              "w") as f:
        f.write(DOCKER_CLEAN)
    with open(os.path.join(root, "etc/apt/sources.list"), "w") as f:
        f.write("deb %s bookworm main\ndeb %s bookworm-updates main\n" % (
            mirror, mirror))

    def tar(dest):
        tmp = dest + ".tmp"
        with tarfile.open(tmp, "w") as t:
            for name in sorted(os.listdir(root)):
                t.add(os.path.join(root, name), arcname=name)
        os.rename(tmp, dest)

    tar(BASE_TAR)
    with open(os.path.join(root, "etc/dpkg/dpkg.cfg.d/docker-slim"),
              "w") as f:
        f.write(SLIM_DPKG)
    for d in ("usr/share/doc", "usr/share/man", "usr/share/info",
              "usr/share/locale"):
        for p in glob.glob(os.path.join(root, d, "*")):
            if d == "usr/share/doc" and os.path.isdir(p):
                for q in os.listdir(p):
                    if q != "copyright":
                        qp = os.path.join(p, q)
                        if os.path.isdir(qp) and not os.path.islink(qp):
                            shutil.rmtree(qp)
                        else:
                            os.unlink(qp)
            elif os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
            else:
                os.unlink(p)
    tar(SLIM_TAR)
    shutil.rmtree(root, ignore_errors=True)


def image_exists(ref):
    return run(["podman", "image", "exists", ref], check=False).returncode == 0


def import_base_images():
    for tar, ref in ((BASE_TAR, "docker.io/library/debian:bookworm"),
                     (SLIM_TAR, "docker.io/library/debian:bookworm-slim")):
        # Re-import when the tarball is newer than the image.
        if image_exists(ref):
            p = run(["podman", "image", "inspect", "--format",
                     "{{.Labels}}", ref], quiet=True)
            if str(int(os.path.getmtime(tar))) in p.stdout:
                continue
        run(["podman", "import", "--change",
             "LABEL shortd.tarball.mtime=%d" % int(os.path.getmtime(tar)),
             "--change", 'CMD ["bash"]', tar, ref], log="images.log")


def build_standins():
    for ref, ctx in STANDINS:
        run(BUILDAH + ["--format", "docker", "-t", ref,
                       os.path.join(ctx)], log="images.log", timeout=1800)


def build_shortd():
    run(BUILDAH + ["--format", "docker", "-f", "Dockerfile.multi", "-t",
                   IMAGE, "."], log="build.log", timeout=1800)


# Run in an image: exit 1 and list them if it holds a C compiler, an
# assembler or linker, or any C header; else exit 0 (and go on).
NO_TOOLCHAIN = r"""
set -e
{
    # compilers, assemblers and linkers on the PATH
    find /usr/local/bin /usr/bin /usr/local/sbin /usr/sbin -maxdepth 1 \
        \( -name cc -o -name 'gcc' -o -name 'gcc-[0-9]*' -o -name 'c++' \
        -o -name 'g++*' -o -name cpp -o -name 'cpp-[0-9]*' -o -name 'clang*' \
        -o -name tcc -o -name as -o -name ld -o -name 'ld.bfd' \
        -o -name 'ld.gold' -o -name '*-linux-gnu-gcc*' \
        -o -name '*-linux-gnu-as' -o -name '*-linux-gnu-ld*' \) -print
    # gcc's compiler proper, and any C header anywhere
    find / -xdev \( -name cc1 -o -name '*.h' \) -print
} > /tmp/toolchain
if [ -s /tmp/toolchain ]; then
    echo "compiler or headers in the image:"; sort /tmp/toolchain | head -50
    exit 1
fi
if [ -d /usr/include ] && [ -n "$(ls -A /usr/include)" ]; then
    echo "/usr/include is not empty:"; ls /usr/include | head; exit 1
fi
if ldd /usr/sbin/shortd 2>/dev/null | grep 'not found'; then exit 1; fi
"""


# ---------------------------------------------------------------- compose

def compose_env(secret):
    env = dict(os.environ)
    for k in list(env):
        if k.startswith(("SHORTD_", "MARIADB_", "COMPOSE_")):
            del env[k]
    env["SHORTD_JWT_SECRET"] = secret
    return env


def compose(args, env, log="compose.log", files=(COMPOSE,), check=True,
            timeout=600):
    cmd = ["podman-compose", "--no-ansi", "-p", PROJECT]
    for f in files:
        cmd += ["-f", f]
    return run(cmd + args, env=env, log=log, check=check, timeout=timeout)


def containers():
    """{name: state ("running", "exited", ...)} of this project's
    containers."""
    p = run(["podman", "ps", "-a", "--filter",
             "label=io.podman.compose.project=" + PROJECT,
             "--format", "json"], quiet=True)
    return {c["Names"][0]: c["State"] for c in json.loads(p.stdout or "[]")}


def save_logs(tag):
    for name in sorted(containers()):
        p = run(["podman", "logs", name], check=False, quiet=True)
        with open(os.path.join(OUT, "%s.%s.log" % (name, tag)), "w") as f:
            f.write(p.stdout)


def teardown(env, quiet=False):
    """Containers, the volume and the network: nothing of ours stays."""
    compose(["down", "-v"], env, check=False,
            files=(COMPOSE, SCALE3))
    for name in containers():
        run(["podman", "rm", "-f", name], check=False)
    run(["podman", "volume", "rm", "-f", VOLUME], check=False, quiet=True)
    if run(["podman", "network", "exists", NETWORK],
           check=False).returncode == 0:
        run(["podman", "network", "rm", "-f", NETWORK], check=False)


def wait_healthy(names, timeout=240):
    """Run each container's own health check until all pass."""
    deadline = time.time() + timeout
    pending = set(names)
    last = {}
    while pending:
        for name in sorted(pending):
            p = run(["podman", "healthcheck", "run", name], check=False,
                    quiet=True)
            last[name] = p.stdout.strip()
            if p.returncode == 0:
                pending.discard(name)
        if not pending:
            break
        if time.time() > deadline:
            raise Failed("not healthy after %ds: %s\n%s" % (
                timeout, ", ".join(sorted(pending)),
                "\n".join("%s: %s" % kv for kv in sorted(last.items()))))
        time.sleep(1)


def wait_http(url, timeout=60):
    deadline = time.time() + timeout
    while True:
        try:
            r = requests.get(url + "/", timeout=5)
            if r.status_code == 403:        # shortd behind nginx
                return
            why = "%d %r" % (r.status_code, r.content[:200])
        except requests.RequestException as e:
            why = str(e)
        if time.time() > deadline:
            raise Failed("%s not answering after %ds: %s" % (url, timeout,
                                                            why))
        time.sleep(0.5)


def resolved_config(env, files=(COMPOSE,), env_file=None):
    """docker-compose's view of the files, variables substituted (from
    env, and from env_file or the .env file beside them)."""
    cmd = ["docker-compose", "-p", PROJECT]
    if env_file:
        cmd += ["--env-file", env_file]
    for f in files:
        cmd += ["-f", f]
    p = subprocess.run(cmd + ["config"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, env=env, cwd=TOP, timeout=120)
    if p.returncode != 0:
        raise Failed("docker-compose config: exit %d\n%s" % (p.returncode,
                                                              p.stderr))
    return yaml.safe_load(p.stdout)


def container_ip(name):
    p = run(["podman", "inspect", "--format",
             '{{(index .NetworkSettings.Networks "%s").IPAddress}}' % NETWORK,
             name])
    return p.stdout.strip()


# ---------------------------------------------------------------- adapter

class ComposeStack:
    """What the e2e cases use of regress/stack.py's Stack, pointed at the
    compose front (nginx on the host port) and the compose database.
    Anything else a case asks for is an AttributeError: a case that
    needs more must be listed in NOT_HERE, never passed silently."""

    def __init__(self, port, secret, db_host, db_user, db_password, db_name):
        self.host = "127.0.0.1"
        self.port = port
        self._secret = secret.encode()
        self._db = dict(host=db_host, port=3306, user=db_user,
                        password=db_password, database=db_name)
        self._unique = 0
        self._lock = stackmod.threading.Lock()
        self.problems = []
        # Every response is checked against docs/openapi.yaml, as in
        # make check.
        self.openapi = self._openapi_checker()

    url = stackmod.Stack.url
    base_url = stackmod.Stack.base_url
    http = stackmod.Stack.http
    raw_request = stackmod.Stack.raw_request
    unique = stackmod.Stack.unique
    register = stackmod.Stack.register
    login = stackmod.Stack.login
    new_user = stackmod.Stack.new_user
    shorten = stackmod.Stack.shorten
    _openapi_checker = stackmod.Stack._openapi_checker
    _openapi_check = stackmod.Stack._openapi_check

    @property
    def jwt_secret(self):
        return self._secret

    def db_connect(self, **kw):
        args = dict(self._db, charset="utf8mb4", autocommit=True,
                    connect_timeout=5)
        args.update(kw)
        return pymysql.connect(**args)

    def sql(self, query, args=None):
        conn = self.db_connect()
        try:
            with conn.cursor() as c:
                c.execute(query, args)
                return c.fetchall()
        finally:
            conn.close()


# ---------------------------------------------------------------- cases

class Phases:
    """Named steps, each counted ok/FAIL with its time (shared with
    regress/vm/check.py)."""

    def __init__(self):
        self.t = runmod.Tally()
        self.times = []

    def phase(self, name, fn, *a):
        """One named step: ok/FAIL, its time; -> fn's result or raise."""
        t0 = time.time()
        try:
            v = fn(*a)
        except Exception as e:
            self.t.fail(name, str(e) if isinstance(e, Failed)
                        else traceback.format_exc())
            self.times.append((name, time.time() - t0))
            raise Failed(name)
        self.t.ok(name)
        self.times.append((name, time.time() - t0))
        return v

    def run_all(self):
        """self.main(), then the failed names and "N passed, N failed"
        -> the exit status."""
        try:
            self.main()
        except KeyboardInterrupt:
            self.t.fail("interrupted")
        t = self.t
        if t.failed:
            print("\nfailed:\n" + "".join("  %s\n" % n for n in t.failed),
                  end="")
        print("%d passed, %d failed" % (t.passed, len(t.failed)), flush=True)
        return 1 if t.failed else 0

    def print_times(self, t_all):
        say("timings:")
        for name, secs in self.times:
            say("  %6.1fs  %s" % (secs, name))
        say("  %6.1fs  in all" % (time.time() - t_all))


def run_e2e(t, s, label, files=E2E_FILES, not_here=NOT_HERE):
    """Every test_* of regress/e2e/<files> but those in not_here, run
    against s (an adapter like ComposeStack), counted in t as
    "<label> <case>".  -> (cases run, seconds)."""
    cases = [c for c in runmod.collect_e2e("")
             if c[0].split(":")[0] in files]
    for name in [c[0] for c in cases if c[0] in not_here]:
        say("only in make check: %s (%s)" % (name, not_here[name]))
    old = signal.signal(signal.SIGALRM, runmod._alarm)
    t0 = time.time()
    n = 0
    try:
        for name, fn, err in cases:
            if name in not_here:
                continue
            name = label + " " + name
            if fn is None:
                t.fail(name, err)
                continue
            n += 1
            c0 = time.time()
            try:
                signal.alarm(runmod.CASE_LIMIT)
                try:
                    fn(s)
                finally:
                    signal.alarm(0)
            except Exception:
                t.fail(name, traceback.format_exc())
            else:
                t.ok(name)
            if time.time() - c0 >= 5:
                say("  %s took %.1fs" % (name, time.time() - c0))
    finally:
        signal.signal(signal.SIGALRM, old)
    return n, time.time() - t0


class Checks(Phases):
    def __init__(self, port, keep):
        Phases.__init__(self)
        self.port = port
        self.keep = keep
        self.url = "http://127.0.0.1:%d" % port
        self.secret = "check-" + secrets.token_hex(24)
        self.env = compose_env(self.secret)
        self.env["SHORTD_HTTP_PORT"] = str(port)
        # The e2e cases log in far more often than people do; the
        # limit itself is tested by make check (test_hostile.py).
        self.env["SHORTD_LOGIN_RATE"] = "1000r/s"
        self.s = None

    # -- static checks

    def check_compose_file(self):
        run(["docker-compose", "-f", COMPOSE, "config", "-q"], env=self.env)
        run(["docker-compose", "-f", COMPOSE, "-f", SCALE3, "config", "-q"],
            env=self.env)
        cfg = resolved_config(self.env)
        svc = cfg["services"]
        assert set(svc) == {"db", "auth", "shortener", "nginx"}, set(svc)
        for name in svc:
            nets = svc[name].get("networks")
            assert nets and NETWORK in nets, "%s: networks %r" % (name, nets)
        assert cfg["networks"][NETWORK].get("name") == NETWORK, \
            cfg["networks"]
        for name in ("auth", "shortener"):
            e = svc[name]["environment"]
            assert e.get("SHORTD_JWT_SECRET") == self.secret, \
                "%s does not take SHORTD_JWT_SECRET from the environment" \
                % name
        # Without the variable: the documented default, the same in both.
        bare = dict(self.env)
        del bare["SHORTD_JWT_SECRET"]
        empty = os.path.join(OUT, "empty.env")     # not a local .env
        open(empty, "w").close()
        dsvc = resolved_config(bare, env_file=empty)["services"]
        a = dsvc["auth"]["environment"].get("SHORTD_JWT_SECRET")
        b = dsvc["shortener"]["environment"].get("SHORTD_JWT_SECRET")
        assert a and a == b and len(a) >= 32, \
            "default secrets differ or are short: %r %r" % (a, b)
        ports = svc["nginx"].get("ports")
        assert ports and str(self.port) in json.dumps(ports), ports

    def check_nginx_conf_consistent(self):
        """etc/nginx.conf (compose) and etc/nginx-local.conf.in (make
        run, make check) must send the same FastCGI parameters and answer
        nginx's own errors with the same JSON."""
        def parts(path):
            with open(os.path.join(TOP, path)) as f:
                lines = [l.split("#")[0].strip() for l in f]
            lines = [re.sub(r"\s+", " ", l) for l in lines if l]
            # Connection handling differs by design: compose resolves
            # the pools by name per request (no upstream block, so no
            # kept connections to them); the parameters may not differ.
            params = [l for l in lines if l.startswith("fastcgi_")
                      and not l.startswith(("fastcgi_pass ",
                                            "fastcgi_temp_path ",
                                            "fastcgi_keep_conn ",
                                            "fastcgi_next_upstream "))]
            start = next(i for i, l in enumerate(lines)
                         if l.startswith("error_page "))
            errors = lines[start:]
            return params, errors
        lp, le = parts("etc/nginx-local.conf.in")
        cp, ce = parts("etc/nginx.conf")
        assert lp == cp, "fastcgi_* directives differ:\n  local %r\n  " \
            "compose %r" % (sorted(set(lp) - set(cp)),
                            sorted(set(cp) - set(lp)))
        assert le == ce, "error pages differ from etc/nginx-local.conf.in"
        assert len(le) > 40 and len(lp) > 15, "too little compared"

    # -- the running stack

    def up(self, files=(COMPOSE,)):
        compose(["up", "-d"], self.env, files=files)
        names = containers()
        down = [n for n, st in names.items() if st != "running"]
        if down:
            raise Failed("not running after up: %s" % ", ".join(down))
        return names

    def wait_stack(self, names):
        wait_healthy([n for n in names if "_nginx_" not in n])
        wait_http(self.url)

    def make_adapter(self):
        cfg = resolved_config(self.env)["services"]["db"]["environment"]
        self.s = ComposeStack(self.port, self.secret,
                              container_ip(PROJECT + "_db_1"),
                              cfg["MARIADB_USER"], cfg["MARIADB_PASSWORD"],
                              cfg["MARIADB_DATABASE"])
        # The database the cases read is the one shortd writes.
        u, pw, tok = self.s.new_user("probe")
        rows = self.s.sql("SELECT COUNT(*) FROM users WHERE username=%s",
                          (u,))
        assert rows[0][0] == 1, rows

    def run_e2e(self):
        n, secs = run_e2e(self.t, self.s, "compose")
        self.times.append(("%d e2e cases through the compose front" % n,
                           secs))

    def check_image(self):
        p = run(["podman", "image", "inspect", IMAGE])
        info = json.loads(p.stdout)[0]
        conf = info.get("Config", {})
        size = info.get("Size", 0)
        say("runtime image %s: %.1f MB (%d bytes)" % (IMAGE, size / 1e6,
                                                       size))
        assert conf.get("User") == "shortd", "USER %r" % conf.get("User")
        assert conf.get("Entrypoint") == ["/usr/sbin/shortd", "-f"], \
            conf.get("Entrypoint")
        assert conf.get("StopSignal") in ("SIGTERM", "TERM", "15"), \
            conf.get("StopSignal")
        hc = (info.get("Healthcheck") or conf.get("Healthcheck") or {})
        assert hc.get("Test") == ["CMD", "/usr/sbin/shortd", "-H"], \
            "HEALTHCHECK %r" % hc
        p = run(["podman", "run", "--rm", "--no-healthcheck", "--user",
                 "root", "--entrypoint", "bash", IMAGE, "-c",
                 NO_TOOLCHAIN + "cat /usr/share/shortd/schema.sql"])
        with open(os.path.join(TOP, "sql", "schema.sql")) as f:
            assert p.stdout == f.read(), \
                "/usr/share/shortd/schema.sql differs from sql/schema.sql"
        p = run(["podman", "run", "--rm", "--no-healthcheck", "--entrypoint",
                 "id", IMAGE, "-u"])
        assert p.stdout.strip() not in ("", "0"), "runs as uid %r" % p.stdout

    def check_toolchain_probe(self):
        """The same probe finds the compiler and headers of the build
        stage (so it can fail)."""
        run(BUILDAH + ["--format", "docker", "--target", "build", "-f",
                       "Dockerfile.multi", "-t", BUILD_IMAGE, "."],
            log="build.log", timeout=1800)
        p = run(["podman", "run", "--rm", "--no-healthcheck", "--entrypoint",
                 "bash", BUILD_IMAGE, "-c", NO_TOOLCHAIN], check=False,
                quiet=True)
        assert p.returncode == 1 and "/usr/bin/gcc" in p.stdout and \
            "/usr/include/" in p.stdout, \
            "the probe missed the build stage's toolchain: exit %d\n%s" % (
                p.returncode, p.stdout[-2000:])

    def check_term(self, name):
        """`podman stop` TERMs shortd (PID 1), which exits 0 by itself:
        status 137 would mean the 10 s timeout ran out and it was
        killed."""
        t0 = time.time()
        run(["podman", "stop", "-t", "10", name])
        took = time.time() - t0
        p = run(["podman", "inspect", "--format", "{{.State.ExitCode}}",
                 name])
        say("podman stop %s: %.1fs, exit status %s" % (name, took,
                                                        p.stdout.strip()))
        assert p.stdout.strip() == "0", \
            "shortd exited %s on TERM (137: killed after the timeout)" % \
            p.stdout.strip()
        p = run(["podman", "logs", "--tail", "5", name], quiet=True)
        assert "stopped" in p.stdout, "no 'stopped' in the log:\n" + p.stdout

    def restart_pools(self, ips, data):
        for name in ips:
            run(["podman", "start", name])
        for name, old in ips.items():
            say("%s: address %s before, %s after the restart" % (
                name, old, container_ip(name)))
        wait_healthy(list(ips))
        deadline = time.time() + 60
        while True:
            try:
                self.check_data(data)
                return
            except (AssertionError, requests.RequestException):
                if time.time() > deadline:
                    raise
            time.sleep(0.5)

    def make_data(self):
        user, pw, tok = self.s.new_user("keep")
        url = "https://example.org/kept/" + user
        i = self.s.shorten(tok, url)
        return user, pw, i, url

    def check_data(self, data):
        user, pw, i, url = data
        tok = self.s.login(user, pw)
        r = self.s.http("GET", "/" + i)
        assert r.status_code == 301 and r.headers.get("Location") == url, \
            "GET /%s after the restart: %d %r" % (i, r.status_code,
                                                  r.content[:200])
        r = self.s.http("GET", "/", token=tok)
        assert r.status_code == 200 and \
            r.json()["items"] == [{"id": i, "value": url}], \
            "GET / after the restart: %d %r" % (r.status_code,
                                                r.content[:300])

    def restart_scaled(self):
        compose(["down"], self.env)
        left = containers()
        assert not left, "containers left after down: %r" % left
        p = run(["podman", "volume", "exists", VOLUME], check=False)
        assert p.returncode == 0, "volume %s gone after down" % VOLUME
        names = self.up(files=(COMPOSE, SCALE3))
        shorteners = sorted(n for n in names if "_shortener_" in n)
        assert len(shorteners) == 3, "shortener containers: %r" % shorteners
        self.wait_stack(names)
        self.s._db["host"] = container_ip(PROJECT + "_db_1")
        return shorteners

    def check_spread(self, shorteners):
        """nginx resolves the service name to every replica and spreads
        requests over them (it logs the upstream address of each)."""
        want = {container_ip(n) for n in shorteners}
        mark = "/spread-" + secrets.token_hex(4)
        for k in range(60):
            r = self.s.http("GET", "%s%d" % (mark, k))
            assert r.status_code == 404, "GET %s%d: %d" % (mark, k,
                                                           r.status_code)
        time.sleep(0.5)
        p = run(["podman", "logs", PROJECT + "_nginx_1"], quiet=True)
        seen = set()
        for line in p.stdout.splitlines():
            if mark in line:
                m = re.search(r"upstream=(\S+)", line)
                if m:
                    seen.update(a.rsplit(":", 1)[0]
                                for a in m.group(1).split(","))
        assert seen == want, "requests reached %r, replicas are %r" % (
            sorted(seen), sorted(want))

    # -- the whole run

    def main(self):
        t_all = time.time()
        try:
            self.phase("compose file valid (docker-compose config -q)",
                       self.check_compose_file)
            self.phase("etc/nginx.conf matches etc/nginx-local.conf.in",
                       self.check_nginx_conf_consistent)
            self.phase("base images (debootstrap bookworm minbase)",
                       self.base_images)
            self.phase("stand-in mariadb and nginx images", build_standins)
            self.phase("Dockerfile.multi builds", build_shortd)
            self.phase("runtime image: no compiler or headers, non-root, "
                       "schema, HEALTHCHECK", self.check_image)
            self.phase("the toolchain probe finds gcc and headers in the "
                       "build stage", self.check_toolchain_probe)
            names = self.phase("podman-compose up -d", self.up)
            self.phase("every container healthy, nginx answers",
                       self.wait_stack, names)
            self.phase("e2e adapter reaches the compose database",
                       self.make_adapter)
            self.run_e2e()
            data = self.phase("data created before the restart",
                              self.make_data)
            ips = {}
            for svc in ("auth", "shortener"):
                name = "%s_%s_1" % (PROJECT, svc)
                ips[name] = container_ip(name)
                self.phase("podman stop %s: TERM, exit 0" % svc,
                           self.check_term, name)
            self.phase("auth and shortener started again: nginx finds "
                       "their new addresses", self.restart_pools, ips, data)
            save_logs("first")
            shorteners = self.phase(
                "down (volume kept), up with 3 shortener replicas",
                self.restart_scaled)
            self.phase("data survived in the volume", self.check_data, data)
            self.phase("nginx spreads requests over the 3 replicas",
                       self.check_spread, shorteners)
            save_logs("second")
        except Failed:
            save_logs("failed")
        finally:
            if self.keep:
                say("--keep: stack left running (podman-compose -p %s "
                    "down -v to remove)" % PROJECT)
            else:
                t0 = time.time()
                teardown(self.env)
                left = containers()
                net = run(["podman", "network", "exists", NETWORK],
                          check=False).returncode == 0
                vol = run(["podman", "volume", "exists", VOLUME],
                          check=False).returncode == 0
                # Images replaced by this run's builds; the tagged ones
                # and their layers stay as the next run's cache.
                run(["podman", "image", "prune", "-f"], check=False,
                    quiet=True)
                if left or net or vol:
                    self.t.fail("torn down", "left: containers %r, "
                                "network %s, volume %s" % (left, net, vol))
                else:
                    self.t.ok("torn down: containers, volume, network")
                self.times.append(("teardown", time.time() - t0))
        self.print_times(t_all)

    def base_images(self):
        make_base_tarballs()
        import_base_images()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=5003)
    ap.add_argument("--keep", action="store_true",
                    help="leave the stack running at the end")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("check-containers: rootful podman and buildah need root")
    os.environ["CONTAINERS_CONF"] = os.path.join(HERE, "containers.conf")
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT, exist_ok=True)
    # What a run left (--keep, or killed) is ours to remove first.
    teardown(compose_env("unused-" + "x" * 32))
    if stackmod.port_open("127.0.0.1", args.port):
        sys.exit("check-containers: port %d is in use (make run?); "
                 "use --port" % args.port)
    c = Checks(args.port, args.keep)
    return c.run_all()


if __name__ == "__main__":
    sys.exit(main())
