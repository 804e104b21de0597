"""
End-to-end cases for `shortd -H`, the liveness probe the container
image's HEALTHCHECK runs: one FastCGI request to each enabled pool's
socket, exit 0 only when every pool's worker answers it.

Each test_*(s) gets the shared running stack and leaves it running.
"""

import os
import socket
import subprocess
import threading


def _probe(s, conf_path=None):
    return subprocess.run(
        [s.shortd_path, "-H", "-c", conf_path or s.conf_path],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=s.shortd_env(), timeout=60)


def _show(p):
    return "exit %d, stdout %r, stderr %r" % (p.returncode, p.stdout,
                                              p.stderr)


def test_health_running_pools(s):
    p = _probe(s)
    assert p.returncode == 0, _show(p)
    lines = p.stdout.splitlines()
    assert len(lines) == 2, _show(p)
    assert lines[0].startswith("auth ") and \
        lines[0].endswith(": healthy (HTTP 405)"), _show(p)
    assert lines[1].startswith("shortener ") and \
        lines[1].endswith(": healthy (HTTP 403)"), _show(p)


def test_health_stopped_shortd(s):
    try:
        rc = s.stop_shortd()
        assert rc == 0, "shortd exited %s on TERM" % rc
        p = _probe(s)
        assert p.returncode == 1, "probe of a stopped shortd: " + _show(p)
        lines = p.stdout.splitlines()
        assert len(lines) == 2 and \
            all(": unhealthy: connect: " in l for l in lines), _show(p)
    finally:
        s.start_shortd()
    p = _probe(s)
    assert p.returncode == 0, "after the restart: " + _show(p)


def test_health_ignores_database_outage(s):
    """Liveness, not readiness: a database outage (which the workers
    ride out with 503s) does not make the container unhealthy, so an
    orchestrator does not restart shortd in a loop while MariaDB is
    down."""
    try:
        s.stop_db()
        p = _probe(s)
        assert p.returncode == 0, "probe with MariaDB down: " + _show(p)
    finally:
        s.start_db()


def test_health_not_fastcgi(s):
    """Something that accepts and hangs up is not a healthy pool."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    lsock.settimeout(0.1)   # close() does not wake a blocked accept()
    port = lsock.getsockname()[1]
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                c, _ = lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            c.settimeout(5)
            c.recv(4096)
            c.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    conf = os.path.join(s.root, "health-fake.conf")
    try:
        with open(conf, "w") as f:
            f.write(s.conf_text({"auth_enabled": "no",
                                 "shortener_listen": "127.0.0.1:%d" % port}))
        p = _probe(s, conf)
        assert p.returncode == 1, "probe of a non-FastCGI peer: " + _show(p)
        assert p.stdout.startswith("shortener 127.0.0.1:%d: unhealthy: "
                                   "connection closed" % port), _show(p)
    finally:
        stop.set()
        lsock.close()
        t.join(5)
        try:
            os.unlink(conf)
        except OSError:
            pass
