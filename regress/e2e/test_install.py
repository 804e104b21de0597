"""
What an operator installs and reads (issue 6): `make install` puts the
binary, both man pages, the default configuration, the systemd unit,
the sysusers.d file and the schema under PREFIX/DESTDIR; the installed
unit passes `systemd-analyze verify` (which also runs man(1) on its
Documentation= pages); the pages lint clean with mandoc and groff;
every configuration key, option and signal is documented; and the
master speaks systemd's notify protocol (READY, RELOADING with
MONOTONIC_USEC, STOPPING) on $NOTIFY_SOCKET.

The tools come from `make deps` (systemd, mandoc, man-db, groff-base).
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
PAGES = {"shortd.8": os.path.join(TOP, "man", "shortd.8"),
         "shortd.conf.5": os.path.join(TOP, "man", "shortd.conf.5")}
CONF = os.path.join(TOP, "etc", "shortd.conf")


def _run(cmd, env=None, cwd=TOP, timeout=120):
    e = dict(os.environ)
    e.pop("MAKEFLAGS", None)
    e.pop("MFLAGS", None)
    e.update(env or {})
    return subprocess.run(cmd, cwd=cwd, env=e, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout)


def _install(prefix, destdir=""):
    p = _run(["make", "-s", "install", "PREFIX=" + prefix,
              "DESTDIR=" + destdir])
    assert p.returncode == 0, "make install PREFIX=%s DESTDIR=%s:\n%s" % (
        prefix, destdir, p.stdout)


def _keys(s):
    """Every key of daemon/config.c's table, from `shortd -t`."""
    p = s.shortd_check()
    assert p.returncode == 0, p.stdout + p.stderr
    keys = re.findall(r"^([a-z0-9_]+) = ", p.stdout, re.M)
    assert len(keys) > 40 and "status_listen" in keys, p.stdout
    return keys


def test_make_install_puts_everything_in_place(s):
    tmp = tempfile.mkdtemp(prefix="shortd-install-")
    try:
        prefix = os.path.join(tmp, "usr")
        _install(prefix)
        want = ["sbin/shortd", "share/man/man8/shortd.8",
                "share/man/man5/shortd.conf.5", "etc/shortd/shortd.conf",
                "lib/systemd/system/shortd.service",
                "lib/sysusers.d/shortd.conf", "share/shortd/schema.sql"]
        for f in want:
            assert os.path.isfile(os.path.join(prefix, f)), \
                "make install PREFIX=%s: no %s" % (prefix, f)
        assert os.access(os.path.join(prefix, "sbin/shortd"), os.X_OK)
        p = _run([os.path.join(prefix, "sbin/shortd"), "-v"])
        assert p.returncode == 0 and p.stdout.startswith("shortd "), p.stdout
        # The installed configuration is valid (given a secret).
        p = _run([os.path.join(prefix, "sbin/shortd"), "-t", "-c",
                  os.path.join(prefix, "etc/shortd/shortd.conf")],
                 env={"SHORTD_JWT_SECRET": "x" * 40})
        assert p.returncode == 0, p.stdout
        unit = open(os.path.join(
            prefix, "lib/systemd/system/shortd.service")).read()
        assert "ExecStart=%s/sbin/shortd -f -c %s/etc/shortd/shortd.conf" % (
            prefix, prefix) in unit, unit
        assert "/usr/local" not in unit, unit
        # A second install keeps an edited configuration.
        with open(os.path.join(prefix, "etc/shortd/shortd.conf"), "a") as f:
            f.write("# edited\n")
        _install(prefix)
        assert open(os.path.join(prefix, "etc/shortd/shortd.conf")) \
            .read().endswith("# edited\n"), "make install overwrote it"
        assert os.path.isfile(os.path.join(prefix,
                                           "etc/shortd/shortd.conf.dist"))
        # DESTDIR: files staged under it, paths inside without it.
        dest = os.path.join(tmp, "stage")
        _install("/usr", dest)
        for f in want:
            assert os.path.isfile(os.path.join(dest, "usr", f)), \
                "make install DESTDIR=%s PREFIX=/usr: no %s" % (dest, f)
        unit = open(os.path.join(
            dest, "usr/lib/systemd/system/shortd.service")).read()
        assert "ExecStart=/usr/sbin/shortd -f -c /usr/etc/shortd/" \
            "shortd.conf" in unit, unit
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_unit_file_passes_systemd_analyze_verify(s):
    tmp = tempfile.mkdtemp(prefix="shortd-unit-")
    try:
        prefix = os.path.join(tmp, "usr")
        _install(prefix)
        unit = os.path.join(prefix, "lib/systemd/system/shortd.service")
        # verify runs `man` on Documentation=: let it find the pages.
        p = _run(["systemd-analyze", "verify", unit],
                 env={"MANPATH": os.path.join(prefix, "share/man")})
        assert p.returncode == 0 and p.stdout.strip() == "", \
            "systemd-analyze verify %s: exit %d\n%s" % (
                unit, p.returncode, p.stdout)
        text = open(unit).read()
        for want in ("Type=notify", "NoNewPrivileges=yes",
                     "ProtectSystem=strict", "PrivateTmp=yes",
                     "ExecReload=+/bin/kill -HUP $MAINPID"):
            assert want in text, "the unit lacks %s" % want
        # A broken directive would be reported: the check can fail.
        bad = os.path.join(tmp, "bad.service")
        with open(bad, "w") as f:
            f.write(text.replace("Type=notify", "Type=notifyy"))
        p = _run(["systemd-analyze", "verify", bad],
                 env={"MANPATH": os.path.join(prefix, "share/man")})
        assert "notifyy" in p.stdout, p.stdout
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_man_pages_lint_clean(s):
    for name, path in PAGES.items():
        p = _run(["mandoc", "-T", "lint", path])
        problems = []
        for line in p.stdout.splitlines():
            if "outdated mandoc.db" in line:
                continue        # about the system's index, not our page
            m = re.search(r"referenced manual not found: Xr (\S+) (\d)", line)
            if m:
                # Our own pages are checked installed (systemd-analyze
                # runs man on them); others only where installed here.
                if m.group(1) in ("shortd", "shortd.conf"):
                    continue
                if _run(["man", "-w", m.group(2), m.group(1)]).returncode:
                    continue
            problems.append(line)
        assert not problems, "mandoc -T lint %s:\n%s" % (
            name, "\n".join(problems))
        # groff with all warnings on, as `man -l` renders it.
        r = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", path],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True,
                           env=dict(os.environ, MANWIDTH="80"), timeout=60)
        assert r.returncode == 0 and r.stderr.strip() == "", \
            "groff warnings for %s:\n%s" % (name, r.stderr)
        assert "SYNOPSIS" in r.stdout or "DESCRIPTION" in r.stdout, r.stdout


def test_every_key_option_and_signal_is_documented(s):
    keys = _keys(s)
    page = open(PAGES["shortd.conf.5"]).read()
    items = set()
    for line in page.splitlines():
        if line.startswith(".It Ic "):
            # ".It Ic a , b Pq default": the names before the next macro
            for w in line[len(".It Ic "):].split():
                if re.match(r"^[A-Z][a-z]$", w):
                    break
                if re.match(r"^[a-z0-9_]+$", w):
                    items.add(w)
    missing = [k for k in keys if k not in items]
    assert not missing, "keys not described in man/shortd.conf.5: %s" % (
        ", ".join(missing))
    stale = sorted(items - set(keys))
    assert not stale, "shortd.conf.5 describes keys shortd does not " \
        "have: %s" % ", ".join(stale)
    conf = open(CONF).read()
    missing = [k for k in keys
               if not re.search(r"^#?\s*%s\s*=" % re.escape(k), conf, re.M)]
    assert not missing, "keys missing from etc/shortd.conf: %s" % (
        ", ".join(missing))

    man8 = open(PAGES["shortd.8"]).read()
    usage = _run([s.shortd_path, "-h"]).stdout
    opts = set(re.findall(r"^\s+-([a-z])\b", usage, re.M))
    assert opts >= {"c", "f", "t", "v"}, usage
    for o in opts:
        assert re.search(r"^\.It Fl %s\b" % o, man8, re.M), \
            "option -%s not described in man/shortd.8" % o
    sigs = re.search(r"^\.Sh SIGNALS\n(.*?)^\.Sh ", man8, re.M | re.S)
    assert sigs, "no SIGNALS section in shortd.8"
    for sig in ("SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1"):
        assert sig in sigs.group(1), "%s not in shortd.8 SIGNALS" % sig
    files = re.search(r"^\.Sh FILES\n(.*?)^\.Sh ", man8, re.M | re.S)
    assert files
    for f in ("shortd.conf", "auth.sock", "shortener.sock", "status.sock",
              "schema.sql", "shortd.service"):
        assert f in files.group(1), "%s not in shortd.8 FILES" % f
    for metric in ("shortd_requests_total", "shortd_request_duration_seconds",
                   "shortd_workers", "shortd_workers_max_reached_total",
                   "shortd_worker_restarts_total",
                   "shortd_db_reconnects_total", "shortd_listen_queue"):
        assert metric in man8, "metric %s not in shortd.8" % metric


def test_sd_notify_ready_reloading_stopping(s):
    path = os.path.join(s.sock_dir, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        os.unlink(path)
    except OSError:
        pass
    sock.bind(path)
    os.chmod(path, 0o666)
    sock.settimeout(10)

    def recv(what):
        try:
            msg = sock.recv(4096).decode()
        except socket.timeout:
            raise AssertionError("no %s on NOTIFY_SOCKET within 10 s" % what)
        return dict(l.split("=", 1) for l in msg.split("\n") if "=" in l)

    try:
        s.restart_shortd(env={"NOTIFY_SOCKET": path})
        m = recv("READY=1 at start")
        assert m.get("READY") == "1", m
        # READY=1 comes once the pools have workers up.
        assert s.workers("auth") and s.workers("shortener")

        t0 = int(time.monotonic() * 1e6)
        s.signal_shortd(signal.SIGHUP)
        m = recv("RELOADING=1")
        assert m.get("RELOADING") == "1", m
        usec = int(m.get("MONOTONIC_USEC", "0"))
        assert t0 <= usec <= int(time.monotonic() * 1e6), \
            "MONOTONIC_USEC %d not between the HUP and now (%d)" % (usec, t0)
        m = recv("READY=1 after the reload")
        assert m.get("READY") == "1", m

        with open(s.conf_path, "a") as f:
            f.write("no_such_key = 1\n")
        s.signal_shortd(signal.SIGHUP)
        assert recv("RELOADING=1").get("RELOADING") == "1"
        assert recv("READY=1 after a refused reload").get("READY") == "1"

        s.signal_shortd(signal.SIGTERM)
        m = recv("STOPPING=1")
        assert m.get("STOPPING") == "1", m
        assert s.wait_shortd(20) == 0
    finally:
        sock.close()
        try:
            os.unlink(path)
        except OSError:
            pass
        s.restart_shortd()


def test_package_nginx_site_loads_in_debian_nginx_conf(s):
    """The Debian package's nginx site (made from the tests' template)
    is included into the http block of Debian's own nginx.conf: it must
    load there with no error and no warning (a directive nginx.conf
    sets too, such as default_type, would be a duplicate)."""
    p = _run(["make", "-s", "build/nginx-site.conf"])
    assert p.returncode == 0, p.stdout
    site = os.path.join(TOP, "build", "nginx-site.conf")
    text = open(site).read()
    assert "@" not in re.sub(r"[#].*", "", text).replace("$", ""), \
        "a placeholder is left in %s" % site
    for want in ("unix:/run/shortd/auth.sock",
                 "unix:/run/shortd/shortener.sock",
                 "unix:/run/shortd/status.sock",
                 "alias /usr/share/shortd/www/;", "listen 80;"):
        assert want in text, "%s lacks %r" % (site, want)
    tmp = tempfile.mkdtemp(prefix="shortd-site-")
    try:
        conf = open("/etc/nginx/nginx.conf").read()
        assert "include /etc/nginx/sites-enabled/*;" in conf, conf
        # Debian's file with the site in place of sites-enabled, and
        # nothing written outside tmp (modules are not needed).
        conf = conf.replace("include /etc/nginx/sites-enabled/*;",
                            "include %s;" % site)
        conf = re.sub(r"^pid .*", "pid %s/nginx.pid;" % tmp, conf,
                      flags=re.M)
        conf = re.sub(r"^(\s*)(access_log|error_log) .*",
                      r"\1\2 %s/log;" % tmp, conf, flags=re.M)
        conf = re.sub(r"^include /etc/nginx/modules-enabled/.*", "", conf,
                      flags=re.M)
        path = os.path.join(tmp, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        p = _run(["nginx", "-t", "-c", path, "-p", tmp, "-e",
                  os.path.join(tmp, "log")])
        assert p.returncode == 0 and "[warn]" not in p.stdout and \
            "[emerg]" not in p.stdout, "nginx -t with the site:\n" + p.stdout
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_listen_group_owns_the_sockets(s):
    """listen_group gives the unix sockets to the front end's group (the
    Debian package sets www-data), whatever group shortd runs as."""
    import grp
    assert os.geteuid() == 0, "the suite runs as root (chown to a group)"
    gid = grp.getgrnam("nogroup").gr_gid
    try:
        s.restart_shortd({"listen_group": "nogroup"})
        for path in (s.auth_sock, s.shortener_sock, s.status_sock):
            st = os.stat(path)
            assert st.st_gid == gid, "%s: gid %d, not nogroup's %d" % (
                path, st.st_gid, gid)
        r = s.http("GET", "/nosuchid")
        assert r.status_code == 404, (r.status_code, r.content[:200])
    finally:
        s.restart_shortd()
    st = os.stat(s.auth_sock)
    assert st.st_gid != gid or os.getegid() == gid, "listen_group stuck"
