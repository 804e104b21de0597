#!/usr/bin/python3
"""`make check-vm`: the Debian package, installed and run under systemd.

    check.py --deb FILE --upgrade FILE [--port 5003] [--keep]

The "VM" is a container whose PID 1 is a real systemd: the Debian base
image of the container tests (regress/containers/check.py: debootstrap
bookworm minbase) with systemd added (Containerfile here), booted by
rootful podman with --systemd=always, CAP_SYS_ADMIN (without it systemd
silently skips the unit's namespaces: ProtectSystem=, PrivateTmp=, ...;
a VM's systemd has it) and CAP_SYS_PTRACE (for the test to read the
namespaces of shortd's processes in /proc).  In it, in order:

  1. the README's three commands, verbatim, with apt
     from the Debian mirror (MariaDB, nginx and the package FILE);
  2. what the package set up: the user, the secret (0640 root:shortd),
     the unit enabled and running, the nginx site answering on the
     container's port;
  3. the sandbox, read from the running processes (/proc): read-only
     file system, private /tmp and /dev, own mount and UTS namespaces,
     no new privileges, seccomp, the capability bounding set;
  4. the e2e suites test_auth, test_shortener, test_classic through
     nginx (the adapter of the container tests; the harness reaches
     MariaDB over the container's address);
  5. `systemctl reload shortd` three times under a steady load: no
     request may fail;
  6. `systemctl restart mariadb` under load: shortd's 503 only, never
     another error, and the time to recover;
  7. an upgrade to FILE2 (same package, higher version): restarted,
     secret kept, links and tokens still valid, edited conffile kept;
  8. a broken shortd.conf: `systemctl reload` keeps the old one and the
     journal says why;
  9. `systemctl stop` (exit 0, `inactive (dead)`), the journal;
 10. `systemctl start` without the secret: fails, one clear line;
 11. `apt purge shortd`: the package's files go, the database stays.

Prints ok/FAIL per step and case, the figures (requests during the
reloads, MariaDB restart and recovery times), timings, and
"N passed, N failed"; exits 1 if anything failed.  The journal and the
apt output go to regress/out/vm/.
"""

import argparse
import json
import os
import re
import secrets
import shlex
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
for d in ("regress", "regress/containers", "regress/e2e"):
    sys.path.insert(0, os.path.join(TOP, d))

import check as cc          # noqa: E402  (images, run, Phases, adapter)
import stack as stackmod    # noqa: E402
import test_faults as faults  # noqa: E402  (Load, the recovery probe)

OUT = os.path.join(TOP, "regress", "out", "vm")
IMAGE = "localhost/shortd-vm:latest"
NAME = "shortd-vm"
README_MD = os.path.join(TOP, "README.md")
SECRET = "/etc/shortd/jwt.secret"
CONF = "/etc/shortd/shortd.conf"
SITE = "/etc/nginx/sites-available/shortd"
# CAP_CHOWN, CAP_SETGID, CAP_SETUID, CAP_NET_BIND_SERVICE: the unit's
# CapabilityBoundingSet as /proc/PID/status shows it.
CAP_BND = "00000000000004c1"
E2E_FILES = ("test_auth.py", "test_shortener.py", "test_classic.py")
say = cc.say
Failed = cc.Failed


def vm(script, check=True, timeout=600, log="vm.log"):
    """Run a bash script in the booted container -> CompletedProcess;
    check: a non-zero exit raises Failed with the output."""
    return cc.run(["podman", "exec", "-e", "DEBIAN_FRONTEND=noninteractive",
                   NAME, "bash", "-c", script], check=check,
                  timeout=timeout, log=log, quiet=True)


def out(script, **kw):
    return vm(script, **kw).stdout.strip()


def readme_commands():
    """The commands of the README's "Installing on a server" block."""
    with open(README_MD) as f:
        text = f.read()
    m = re.search(r"^#+ Installing on a server\n(.*?)^```sh\n(.*?)^```",
                  text, re.M | re.S)
    assert m, "README.md has no \"Installing on a server\" section " \
        "with a ```sh block"
    cmds = [l for l in m.group(2).splitlines()
            if l.strip() and not l.startswith("#")]
    assert len(cmds) == 3, "the install block has %d commands, " \
        "not three: %r" % (len(cmds), cmds)
    assert re.search(r"\./shortd_\S+\.deb", cmds[0]), cmds[0]
    return cmds


class LoadOnly503(faults.Load):
    """While MariaDB restarts, the only failure allowed is shortd's own
    503 {"detail":"unavailable"} with Retry-After (not nginx's 503 for
    an unreachable shortd, and never a 500)."""

    def _classify(self, kind, r, want, check=None):
        res = faults.Load._classify(self, kind, r, want, check)
        if res == "failed" and (r.status_code != 503 or
                                r.headers.get("X-Error-Source") or
                                not r.headers.get("Retry-After")):
            return "bad: %s: %s %r" % (kind, faults._show(r),
                                       dict(r.headers))
        return res


class VMChecks(cc.Phases):
    def __init__(self, port, deb, upgrade, keep):
        cc.Phases.__init__(self)
        self.port = port
        self.url = "http://127.0.0.1:%d" % port
        self.deb = deb
        self.upgrade = upgrade
        self.keep = keep
        self.s = None
        self.figures = []

    def figure(self, text):
        say(text)
        self.figures.append(text)

    # -- the machine

    def image(self):
        cc.make_base_tarballs()
        cc.import_base_images()
        cc.run(cc.BUILDAH + ["--format", "docker", "-f",
                             os.path.join(HERE, "Containerfile"), "-t",
                             IMAGE, HERE], log="image.log", timeout=1800)

    def boot(self):
        cc.run(["podman", "rm", "-f", NAME], check=False, quiet=True)
        cc.run(["podman", "run", "-d", "--name", NAME, "--hostname",
                "shortd-vm", "--systemd=always", "--cap-add", "SYS_ADMIN",
                "--cap-add", "SYS_PTRACE",
                "-p", "127.0.0.1:%d:80" % self.port, IMAGE])
        # Until systemd's bus is up, systemctl cannot even ask.
        deadline = time.time() + 120
        while True:
            p = vm("timeout 120 systemctl is-system-running --wait",
                   check=False)
            state = p.stdout.strip().splitlines()[-1:] or ["?"]
            if "Failed to connect to bus" not in state[0] or \
                    time.time() > deadline:
                break
            time.sleep(0.5)
        say("systemd in the container: %s" % state[0])
        assert out("cat /proc/1/comm") == "systemd", "PID 1 is not systemd"
        assert state[0] == "running", "system %s; failed units:\n%s" % (
            state[0], out("systemctl --failed --no-legend", check=False))

    def journal(self, since, unit="shortd", ident="shortd"):
        """shortd's own lines (-t shortd) of the unit since a time in
        the container (from vm_now), as JSON records."""
        p = vm("journalctl -u %s -t %s --since @%s -o json --no-pager" % (
            unit, ident, since), check=False)
        recs = []
        for line in p.stdout.splitlines():
            try:
                recs.append(json.loads(line))
            except ValueError:
                pass
        return recs

    def vm_now(self):
        return out("date +%s.%N")

    # -- 1, 2: install as the README says

    def install(self):
        for path in (self.deb, self.upgrade):
            cc.run(["podman", "cp", path, "%s:/root/" % NAME])
        # The commands run verbatim: apt answers yes itself.
        vm("echo 'APT::Get::Assume-Yes \"true\";' "
           "> /etc/apt/apt.conf.d/90check-vm && apt-get update -q",
           log="apt.log")
        for cmd in readme_commands():
            cmd = re.sub(r"\./shortd_\S+\.deb",
                         "./" + os.path.basename(self.deb), cmd)
            t0 = time.time()
            vm("cd /root && " + cmd, log="apt.log", timeout=1200)
            say("%5.1fs  %s" % (time.time() - t0, cmd))

    def installed(self):
        assert out("id -un shortd") == "shortd"
        st = out("stat -c '%a %U %G %s' " + SECRET).split()
        assert st[:3] == ["640", "root", "shortd"], \
            "%s is %r, not 640 root shortd" % (SECRET, st)
        assert int(st[3]) >= 33, "secret of %s bytes" % st[3]
        assert out("systemctl is-enabled shortd") == "enabled"
        assert out("systemctl is-active shortd") == "active"
        conff = out("dpkg-query -W -f '${Conffiles}' shortd")
        for f in (CONF, SITE):
            assert f in conff, "%s not a conffile: %s" % (f, conff)
        socks = out("stat -c '%n %a %U %G' /run/shortd/*.sock")
        for line in socks.splitlines():
            assert line.split()[1:] == ["660", "shortd", "www-data"], socks
        cc.wait_http(self.url)
        r = stackmod.requests.post(self.url + "/users", timeout=10,
                                   json={"username": "vm-first",
                                         "password": "first-pw"})
        assert r.status_code == 201, faults._show(r)

    # -- 3: the sandbox, for real

    def sandbox(self):
        main = out("systemctl show -p MainPID --value shortd")
        kids = out("pgrep -P %s" % main).split()
        assert kids, "no workers under %s" % main
        uid = out("id -u shortd")
        init_ns = {k: out("readlink /proc/1/ns/" + k) for k in ("mnt", "uts")}
        for pid in (main, kids[0]):
            st = out("cat /proc/%s/status" % pid)
            f = dict(re.findall(r"^(\w+):\s*(.*)$", st, re.M))
            assert f["Uid"].split() == [uid] * 4, "pid %s Uid %s" % (
                pid, f["Uid"])
            assert f["NoNewPrivs"] == "1", "NoNewPrivs %s" % f["NoNewPrivs"]
            assert f["Seccomp"] == "2", "Seccomp %s" % f["Seccomp"]
            assert f["CapBnd"] == CAP_BND, "CapBnd %s" % f["CapBnd"]
            assert f["CapEff"] == "0000000000000000", f["CapEff"]
            for k in ("mnt", "uts"):
                assert out("readlink /proc/%s/ns/%s" % (pid, k)) != \
                    init_ns[k], "pid %s shares PID 1's %s namespace" % (
                        pid, k)
        mounts = {}
        for line in out("cat /proc/%s/mountinfo" % main).splitlines():
            a = line.split()
            mounts[a[4]] = (a[3], a[5], line.split(" - ")[1])
        assert "ro" in mounts["/"][1].split(","), \
            "/ is not read-only: %r" % (mounts["/"],)
        assert "systemd-private" in mounts["/tmp"][0], \
            "/tmp is not private: %r" % (mounts["/tmp"],)
        assert "hidepid=invisible" in mounts["/proc"][2], mounts["/proc"]
        assert "inaccessible" in mounts.get("/home", ("",))[0], \
            "/home: %r" % (mounts.get("/home"),)
        devs = out("ls /proc/%s/root/dev" % main).split()
        assert "vda" not in devs and len(devs) < 30, \
            "/dev is not private: %r" % devs
        # Writes outside /run/shortd fail even for root in its mounts.
        p = vm("nsenter -t %s -m touch /usr/.probe /etc/.probe /var/.probe"
               % main, check=False)
        assert p.returncode != 0 and p.stdout.count("Read-only") == 3, \
            p.stdout
        vm("nsenter -t %s -m sh -c 'touch /run/shortd/.probe && "
           "rm /run/shortd/.probe'" % main)
        props = out("systemctl show shortd -p MemoryDenyWriteExecute "
                    "-p ProtectSystem -p PrivateTmp -p RestrictNamespaces "
                    "-p SystemCallArchitectures -p NoNewPrivileges")
        for want in ("MemoryDenyWriteExecute=yes", "ProtectSystem=strict",
                     "PrivateTmp=yes", "NoNewPrivileges=yes"):
            assert want in props, "%s not in force:\n%s" % (want, props)
        p = vm("systemd-analyze security shortd --no-pager", check=False)
        m = re.search(r"Overall exposure level for shortd.service: (.*)",
                      p.stdout)
        self.figure("systemd-analyze security: %s" % (
            m.group(1) if m else "?"))

    # -- 4: the e2e suites through nginx

    def e2e_access(self):
        """What the harness needs and an operator would not do: a login
        rate fit for the cases (the limit itself is tested in make
        check), and MariaDB on the container's address for the cases'
        own SQL."""
        pw = "check-" + secrets.token_hex(12)
        vm(r"sed -i 's/rate=10r\/s/rate=1000r\/s/' %s && nginx -t -q && "
           "systemctl reload nginx" % SITE)
        vm("printf '[mysqld]\\nbind-address = 0.0.0.0\\n' > "
           "/etc/mysql/mariadb.conf.d/99-check-vm.cnf && "
           "mariadb -e \"CREATE USER IF NOT EXISTS 'check'@'%%' "
           "IDENTIFIED BY '%s'; GRANT ALL ON shortd.* TO 'check'@'%%'\" "
           "&& systemctl restart mariadb" % pw)
        ip = out("hostname -I").split()[0]
        secret = out("cat " + SECRET)
        self.s = cc.ComposeStack(self.port, secret, ip, "check", pw, "shortd")
        deadline = time.time() + 30
        while True:
            try:
                u, _pw, _tok = self.s.new_user("probe")
                break
            except (AssertionError, stackmod.requests.RequestException):
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
        n = self.s.sql("SELECT COUNT(*) FROM users WHERE username=%s", (u,))
        assert n[0][0] == 1, n

    def e2e(self):
        n, secs = cc.run_e2e(self.t, self.s, "vm", files=E2E_FILES)
        self.times.append(("%d e2e cases through the VM's nginx" % n, secs))

    # -- 5: reloads under load

    def generation(self):
        st = out("systemctl show -p StatusText --value shortd")
        m = re.match(r"generation (\d+)", st)
        assert m, "StatusText %r" % st
        return int(m.group(1))

    def wait_generation(self, g, timeout=60):
        deadline = time.time() + timeout
        while self.generation() < g:
            assert time.time() < deadline, \
                "generation %d not ready after %ds" % (g, timeout)
            time.sleep(0.1)

    def reloads(self):
        main = out("systemctl show -p MainPID --value shortd")
        since = self.vm_now()
        load = faults.Load(self.s, tag="rl").start()
        try:
            time.sleep(1.5)
            t0 = time.time()
            for _ in range(3):
                g = self.generation()
                vm("systemctl reload shortd")
                self.wait_generation(g + 1)
                time.sleep(0.5)
            t1 = time.time()
            time.sleep(1.0)
        finally:
            load.stop()
        during = [r for r in load.results if r[1] >= t0 and r[0] <= t1]
        failed = [r for r in load.results if r[3] != "ok"]
        self.figure("3 reloads under load: %d requests during them "
                    "(%.1f s), %d in all, %d failed" % (
                        len(during), t1 - t0, len(load.results),
                        len(failed)))
        assert not failed, "failed during reloads:\n%s" % "\n".join(
            "%.2f %s %s" % (r[0], r[2], r[3]) for r in failed[:15])
        assert len(during) >= 10, "too little load: %d" % len(during)
        assert out("systemctl show -p MainPID --value shortd") == main, \
            "the master changed: a reload must not restart shortd"
        lines = [r["MESSAGE"] for r in self.journal(since)]
        assert sum("reloaded: generation" in l for l in lines) == 3, \
            "\n".join(lines[-20:])

    # -- 6: MariaDB restarted under load

    def mariadb_restart(self):
        main = out("systemctl show -p MainPID --value shortd")
        load = LoadOnly503(self.s, tag="db").start()
        try:
            time.sleep(1.5)
            t_fault = time.time()
            vm("systemctl restart mariadb")
            t_end = time.time()
            took = faults._recover(self.s, load, t_end)
            time.sleep(1.0)
        finally:
            load.stop()
        summary = load.summary(t_fault, t_end, t_end + took)
        n503 = sum(1 for r in load.results if r[3] == "failed")
        self.figure("systemctl restart mariadb under load: %.2f s to "
                    "restart, shortd recovered %.2f s after it returned "
                    "(%.2f s from the restart); %d answers 503, 0 other "
                    "errors; %s" % (
                        t_end - t_fault, took, t_end - t_fault + took, n503,
                        ", ".join("%s %d" % kv
                                  for kv in sorted(summary.items()))))
        assert not load.bad, "%d unexpected answers:\n%s" % (
            len(load.bad), "\n".join(load.bad[:15]))
        assert summary.get("after ok", 0) >= 3 and \
            not summary.get("after failed"), summary
        assert out("systemctl show -p MainPID --value shortd") == main

    # -- 7: upgrade

    def make_data(self):
        user, pw, tok = self.s.new_user("keep")
        url = "https://example.org/kept/" + user
        i = self.s.shorten(tok, url)
        return user, pw, tok, i, url

    def check_data(self, data):
        user, pw, tok, i, url = data
        r = self.s.http("GET", "/" + i)
        assert r.status_code == 301 and r.headers.get("Location") == url, \
            faults._show(r)
        # The token from before (same secret) still lists the link.
        r = self.s.http("GET", "/", token=tok)
        assert r.status_code == 200 and \
            r.json()["items"] == [{"id": i, "value": url}], faults._show(r)
        self.s.login(user, pw)

    def do_upgrade(self):
        data = self.make_data()
        secret = out("cat " + SECRET)
        old = out("dpkg-query -W -f '${Version}' shortd")
        main = out("systemctl show -p MainPID --value shortd")
        t0 = time.time()
        vm("cd /root && apt install ./%s" % os.path.basename(self.upgrade),
           log="apt.log", timeout=600)
        new = out("dpkg-query -W -f '${Version}' shortd")
        self.figure("upgrade %s -> %s: %.1f s" % (old, new,
                                                   time.time() - t0))
        assert new != old and vm("dpkg --compare-versions %s gt %s" % (
            new, old), check=False).returncode == 0, (old, new)
        assert out("systemctl is-active shortd") == "active"
        assert out("systemctl show -p MainPID --value shortd") != main, \
            "shortd was not restarted by the upgrade"
        assert out("cat " + SECRET) == secret, "the upgrade changed the secret"
        assert "rate=1000r/s" in out("cat " + SITE), \
            "the edited nginx site (a conffile) was replaced"
        cc.wait_http(self.url)
        self.check_data(data)
        return data

    # -- 8: a broken configuration

    def broken_conf(self):
        main = out("systemctl show -p MainPID --value shortd")
        g = self.generation()
        vm("cp %s /root/shortd.conf.good && "
           "echo 'shortener_workers_max = lots' >> %s" % (CONF, CONF))
        since = self.vm_now()
        vm("systemctl reload shortd")
        deadline = time.time() + 15
        why = []
        while not why:
            assert time.time() < deadline, "no refusal in the journal:\n" + \
                out("journalctl -u shortd -n 20 --no-pager")
            time.sleep(0.2)
            why = [r["MESSAGE"] for r in self.journal(since)
                   if "keeping the running configuration" in r["MESSAGE"]]
        say("journal: " + why[0])
        assert "shortener_workers_max" in why[0], why[0]
        time.sleep(1.0)
        assert self.generation() == g, "a new generation from a broken file"
        assert out("systemctl show -p MainPID --value shortd") == main
        assert out("systemctl is-active shortd") == "active"
        r = self.s.http("GET", "/nosuchlink")
        assert r.status_code == 404, faults._show(r)
        vm("cp /root/shortd.conf.good %s && systemctl reload shortd" % CONF)
        self.wait_generation(g + 1)

    # -- 9: stop, status, journal

    def stop(self):
        p = vm("systemctl stop shortd", check=False)
        assert p.returncode == 0, "systemctl stop: exit %d %s" % (
            p.returncode, p.stdout)
        p = vm("systemctl status shortd --no-pager", check=False)
        assert "inactive (dead)" in p.stdout, p.stdout
        show = out("systemctl show shortd -p Result -p ExecMainStatus")
        assert "Result=success" in show and "ExecMainStatus=0" in show, show
        r = self.s.http("GET", "/nosuchlink")
        assert r.status_code == 503 and \
            r.json().get("detail") == "unavailable", faults._show(r)
        p = vm("journalctl -b -u shortd -t shortd -o cat --no-pager")
        lines = p.stdout.splitlines()
        for want in ("started:", "reloaded: generation", "stopping",
                     "stopped"):
            assert any(want in l for l in lines), \
                "no %r in journalctl -u shortd" % want
        self.figure("journalctl -u shortd: %d lines from shortd" % len(
            lines))

    # -- 10: no secret

    def missing_secret(self):
        vm("mv %s /root/jwt.secret.saved" % SECRET)
        try:
            since = self.vm_now()
            p = vm("systemctl start shortd", check=False)
            # Stop the unit's restart loop before reading the journal.
            vm("systemctl stop shortd", check=False)
            assert p.returncode != 0, "started without a secret"
            recs = self.journal(since)
            by_pid = {}
            for r in recs:
                by_pid.setdefault(r.get("_PID"), []).append(r["MESSAGE"])
            assert by_pid, "nothing from shortd in the journal"
            for pid, msgs in by_pid.items():
                assert len(msgs) == 1, "shortd[%s] wrote %d lines:\n%s" % (
                    pid, len(msgs), "\n".join(msgs))
                assert SECRET in msgs[0] and \
                    "No such file or directory" in msgs[0], msgs[0]
            say("journal: " + list(by_pid.values())[0][0])
        finally:
            vm("mv /root/jwt.secret.saved %s" % SECRET)
        vm("systemctl reset-failed shortd; systemctl start shortd")
        cc.wait_http(self.url)

    # -- 11: purge

    def purge(self):
        before = out("mariadb -N -e 'SELECT COUNT(*) FROM shortd.urls'")
        files = out("dpkg -L shortd | grep -v '^/usr/share/doc'")
        vm("apt purge shortd", log="apt.log")
        p = vm("dpkg-query -W -f '${db:Status-Status}' shortd", check=False)
        assert p.returncode != 0 or p.stdout.strip() == "not-installed", \
            "dpkg still lists shortd: %s" % p.stdout
        left = []
        for f in files.splitlines() + ["/etc/shortd", SECRET,
                                       "/var/log/shortd",
                                       "/etc/nginx/sites-enabled/default"]:
            if f in ("/.", "/etc", "/lib", "/usr", "/usr/lib", "/usr/sbin",
                     "/usr/share", "/usr/share/man", "/usr/share/man/man5",
                     "/usr/share/man/man8", "/lib/systemd",
                     "/lib/systemd/system", "/usr/lib/sysusers.d",
                     "/etc/nginx", "/etc/nginx/sites-available"):
                continue
            if vm("test -e %s || test -L %s" % (shlex.quote(f),
                                                shlex.quote(f)),
                  check=False).returncode == 0:
                left.append(f)
        assert not left, "left after purge: %s" % " ".join(left)
        assert vm("pgrep -x shortd", check=False).returncode != 0, \
            "shortd still running"
        vm("nginx -t -q")
        after = out("mariadb -N -e 'SELECT COUNT(*) FROM shortd.urls'")
        assert after == before and int(after) > 0, (before, after)
        self.figure("apt purge: %s package files gone, the database kept "
                    "(%s links)" % (len(files.splitlines()), after))

    # -- the whole run

    def save_journal(self):
        p = vm("journalctl -b --no-pager", check=False)
        with open(os.path.join(OUT, "journal.log"), "w") as f:
            f.write(p.stdout)

    def main(self):
        t_all = time.time()
        try:
            self.phase("VM image: the Debian base with systemd", self.image)
            self.phase("booted: systemd is PID 1, every unit started",
                       self.boot)
            self.phase("the README's three commands (apt)",
                       self.install)
            self.phase("installed: user, secret 0640 root:shortd, unit "
                       "enabled and active, nginx answers", self.installed)
            self.phase("the unit's sandbox is applied to the running "
                       "processes", self.sandbox)
            self.phase("e2e harness reaches the VM's database",
                       self.e2e_access)
            self.e2e()
            self.phase("systemctl reload x3 under load: no failed request",
                       self.reloads)
            self.phase("systemctl restart mariadb under load: 503 then "
                       "recovery, never 500", self.mariadb_restart)
            self.phase("upgrade to a higher version keeps links, tokens, "
                       "secret, edited conffile", self.do_upgrade)
            self.phase("a broken shortd.conf: reload keeps the old one, "
                       "the journal says why", self.broken_conf)
            self.phase("systemctl stop exits 0, inactive (dead); the "
                       "journal has shortd's lines", self.stop)
            self.phase("systemctl start without the secret fails with one "
                       "clear line", self.missing_secret)
            self.phase("apt purge removes the package, keeps the database",
                       self.purge)
        except Failed:
            pass
        finally:
            if cc.run(["podman", "container", "exists", NAME],
                      check=False).returncode == 0:
                self.save_journal()
                if self.keep:
                    say("--keep: %s left running (podman exec -it %s bash)"
                        % (NAME, NAME))
                else:
                    cc.run(["podman", "rm", "-f", "-t", "5", NAME],
                           check=False, quiet=True)
                    cc.run(["podman", "image", "prune", "-f"], check=False,
                           quiet=True)
        say("figures:")
        for f in self.figures:
            say("  " + f)
        self.print_times(t_all)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--deb", required=True)
    ap.add_argument("--upgrade", required=True,
                    help="the same package with a higher version")
    ap.add_argument("--port", type=int, default=5003)
    ap.add_argument("--keep", action="store_true",
                    help="leave the VM running at the end")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("check-vm: rootful podman needs root")
    for f in (args.deb, args.upgrade):
        if not os.path.isfile(f):
            sys.exit("check-vm: no %s (make deb)" % f)
    os.environ["CONTAINERS_CONF"] = os.path.join(TOP, "regress",
                                                 "containers",
                                                 "containers.conf")
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT, exist_ok=True)
    cc.OUT = OUT        # cc.run's logs go here
    cc.run(["podman", "rm", "-f", NAME], check=False, quiet=True)
    if stackmod.port_open("127.0.0.1", args.port):
        sys.exit("check-vm: port %d is in use (make run?); use --port" %
                 args.port)
    c = VMChecks(args.port, os.path.abspath(args.deb),
                 os.path.abspath(args.upgrade), args.keep)
    return c.run_all()


if __name__ == "__main__":
    sys.exit(main())
