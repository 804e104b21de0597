"""
End-to-end cases for the pool manager (issue 6): dynamic pools grow to
workers_max under load and shrink back, request_timeout kills and
replaces a stuck worker (504, logged with the request), HUP under a
steady stream drops nothing and applies a new pool size while a broken
file changes nothing, /metrics and /status answer while every worker is
blocked and count exactly the requests made, max_requests recycles
workers, and the status locations refuse clients off loopback.

Workers are made to block by a row lock the test holds (as
test_daemon.py does for TERM): PUT /:id waits on it inside the worker.
Every case restarts shortd with the settings it needs, so its counters
start from zero, and goes back to the base configuration afterwards.
"""

import functools
import json
import os
import re
import signal
import socket
import threading
import time

NGINX_ERROR = "X-Error-Source"
METRIC_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')


def _show(r):
    return "%d %s %r" % (r.status_code,
                         {k: v for k, v in r.headers.items()
                          if k in ("Location", "Retry-After", NGINX_ERROR,
                                   "Content-Type")},
                         r.content[:300])


def _wait(pred, timeout, step=0.05):
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v or time.time() > deadline:
            return v
        time.sleep(step)


def restoring(fn):
    """Run a case that restarts shortd with its own settings, and go
    back to the base configuration afterwards."""
    @functools.wraps(fn)
    def case(s):
        try:
            return fn(s)
        finally:
            s.restart_shortd()
    return case


def _link(s, prefix="p"):
    """A fresh user with one link -> (token, id, url)."""
    user, pw, token = s.new_user(prefix)
    url = "https://example.org/%s" % user
    return token, s.shorten(token, url), url


def metrics(s):
    """GET /metrics -> {(name, ((label, value), ...)): float}."""
    r = s.http("GET", "/metrics", timeout=10)
    assert r.status_code == 200, "GET /metrics: %s" % _show(r)
    assert r.headers.get("Content-Type", "").startswith("text/plain"), \
        _show(r)
    out = {}
    for line in r.text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = METRIC_RE.match(line)
        assert m, "not a Prometheus sample line: %r" % line
        labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"',
                                         m.group(2) or "")))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def metric(ms, name, **labels):
    return ms.get((name, tuple(sorted(labels.items()))))


def status(s):
    r = s.http("GET", "/status", timeout=10)
    assert r.status_code == 200, "GET /status: %s" % _show(r)
    return r.json()


def pool_status(st, name):
    for p in st["pools"]:
        if p["name"] == name:
            return p
    raise AssertionError("no pool %s in /status: %r" % (name, st))


def workers_of(st, pool):
    return [w for w in st["workers"] if w["pool"] == pool]


class RowLock:
    """Hold a row lock on urls.id = i, so that PUT /i blocks in a
    worker until release()."""

    def __init__(self, s, i):
        self.conn = s.lock_url(i)

    def release(self):
        if self.conn is not None:
            try:
                self.conn.rollback()
                self.conn.close()
            except Exception:
                pass
            self.conn = None


def _spawn(fn, *args):
    """Run fn(*args) in a thread; the thread's .result gets
    ("ok", value) or ("error", exception)."""
    def run():
        try:
            t.result = ("ok", fn(*args))
        except Exception as e:      # noqa: BLE001 - reported by the test
            t.result = ("error", e)
    t = threading.Thread(target=run, daemon=True)
    t.result = None
    t.start()
    return t


def _put(s, token, i, value, timeout=30):
    return s.http("PUT", "/" + i, {"url": value}, token=token,
                  timeout=timeout)


def _results(threads, timeout=30):
    out = []
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a request thread still runs after %ds" % (
            timeout)
        kind, v = t.result
        assert kind == "ok", "request failed: %r" % (v,)
        out.append(v)
    return out


# ------------------------------------------------------------------
# Dynamic pools
# ------------------------------------------------------------------

@restoring
def test_pool_grows_to_max_under_load_and_shrinks_back(s):
    s.restart_shortd({"shortener_workers_min": 1,
                      "shortener_workers_max": 4,
                      "shortener_spare_min": 1,
                      "shortener_spare_max": 2})
    token, i, url = _link(s, "pg")
    # At rest: workers_min, or one more if a request was being served
    # when the master looked; never above spare_max = 2 idle.
    time.sleep(1.5)
    assert 1 <= len(s.workers("shortener")) <= 2, \
        "at rest the pool should have 1 or 2 workers: %r" % (
            s.workers("shortener"))
    lock = RowLock(s, i)
    threads = []
    try:
        for n in range(6):
            threads.append(_spawn(_put, s, token, i, url + "/%d" % n))
        grown = _wait(lambda: len(s.workers("shortener")) == 4 and
                      pool_status(status(s), "shortener")["workers"]
                      ["working"] == 4, 15, 0.1)
        st = status(s)
        assert grown, "6 blocked requests: the pool did not grow to " \
            "workers_max = 4: workers %r, /status %r" % (
                s.workers("shortener"), pool_status(st, "shortener"))
        time.sleep(0.5)
        assert len(s.workers("shortener")) == 4, \
            "the pool went past workers_max: %r" % s.workers("shortener")
        ms = metrics(s)
        assert metric(ms, "shortd_workers_max_reached_total",
                      pool="shortener") >= 1, \
            "max reached not counted: %r" % {
                k: v for k, v in ms.items() if "max" in k[0]}
        assert metric(ms, "shortd_workers", pool="shortener",
                      state="working") == 4, ms
    finally:
        lock.release()
    for r in _results(threads):
        assert r.status_code == 200, "PUT after the lock: %s" % _show(r)
    # Shrink back: 4 idle is more than spare_max = 2; the extra ones
    # are retired (after a second of idleness each).
    shrunk = _wait(lambda: len(s.workers("shortener")) == 2, 15, 0.1)
    assert shrunk, "the pool did not shrink to spare_max = 2 idle: %r" % (
        s.workers("shortener"))
    time.sleep(1.5)
    st = pool_status(status(s), "shortener")
    assert len(s.workers("shortener")) == 2 and st["workers"]["idle"] == 2, \
        "after the load: %r, /status %r" % (s.workers("shortener"), st)
    assert "max_reached" in st and st["max_reached"] >= 1, st
    r = s.http("GET", "/" + i)
    assert r.status_code == 301, _show(r)


@restoring
def test_request_timeout_kills_and_replaces_the_worker(s):
    s.restart_shortd({"shortener_workers": 2,
                      "shortener_request_timeout": 2})
    token, i, url = _link(s, "pt")
    before = set(s.workers("shortener"))
    lock = RowLock(s, i)
    try:
        t = _spawn(_put, s, token, i, url + "/slow")

        def stuck():
            ws = [w for w in workers_of(status(s), "shortener")
                  if w["state"] == "working"]
            return ws[0] if ws else None
        w = _wait(stuck, 5)
        assert w, "no worker busy with the PUT: %r" % status(s)
        assert w["method"] == "PUT" and w["path"] == "/" + i, w
        victim = w["pid"]
        # Meanwhile the other worker serves.
        served = 0
        while t.is_alive() and served < 200:
            r = s.http("GET", "/" + i, timeout=10)
            assert r.status_code == 301, "GET while a PUT hangs: %s" % (
                _show(r))
            served += 1
            time.sleep(0.05)
        r = _results([t])[0]
    finally:
        lock.release()
    assert served > 0
    assert r.status_code == 504, "PUT past request_timeout: %s" % _show(r)
    assert NGINX_ERROR not in r.headers, \
        "the 504 came from nginx, not shortd: %s" % _show(r)
    assert r.json().get("detail") == "timeout", _show(r)
    assert _wait(lambda: victim not in s.workers("shortener") and
                 len(s.workers("shortener")) == 2, 5), \
        "worker %d not replaced: %r" % (victim, s.workers("shortener"))
    assert before - {victim} <= set(s.workers("shortener"))
    log = s.shortd_log()
    assert re.search(r"worker %d: PUT /%s running for [0-9.]+ s, over "
                     r"request_timeout 2 s" % (victim, re.escape(i)), log), \
        "no log line naming the killed request:\n%s" % log[-2000:]
    ms = metrics(s)
    assert metric(ms, "shortd_worker_restarts_total", pool="shortener",
                  reason="request_timeout") == 1, ms
    assert metric(ms, "shortd_worker_restarts_total", pool="shortener",
                  reason="crash") == 0, ms
    assert metric(ms, "shortd_requests_total", pool="shortener",
                  **{"class": "5xx"}) == 1, ms
    r = s.http("GET", "/" + i)
    assert r.status_code == 301, _show(r)


# ------------------------------------------------------------------
# Reloads
# ------------------------------------------------------------------

@restoring
def test_hup_mid_stream_resizes_and_bad_config_keeps_serving(s):
    s.restart_shortd({"shortener_workers": 2})
    token, i, url = _link(s, "ph")
    stop = threading.Event()
    failures, counts = [], {"n": 0}

    def getter():
        while not stop.is_set():
            try:
                r = s.http("GET", "/" + i, timeout=30)
                if r.status_code != 301 or r.headers.get("Location") != url:
                    failures.append("GET /%s: %s" % (i, _show(r)))
            except Exception as e:
                failures.append("GET /%s: %r" % (i, e))
            counts["n"] += 1

    def poster():
        while not stop.is_set():
            try:
                r = s.http("POST", "/users", {"username": s.unique("phu"),
                                              "password": "p"}, timeout=30)
                if r.status_code != 201:
                    failures.append("POST /users: %s" % _show(r))
            except Exception as e:
                failures.append("POST /users: %r" % (e,))
            counts["n"] += 1

    threads = [threading.Thread(target=f, daemon=True)
               for f in (getter, getter, poster)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        with open(s.conf_path, "w") as f:
            f.write(s.conf_text({"shortener_workers": 3}))
        s.signal_shortd(signal.SIGHUP)

        def resized():
            st = status(s)
            ws = workers_of(st, "shortener")
            # The auth pool's generation-0 workers too must be gone
            # (a busy one retires after its request), or one leaving
            # later looks like a change made by the refused reload.
            wa = workers_of(st, "auth")
            return (st["generation"] == 1 and len(ws) == 3 and
                    all(w["generation"] == 1 for w in ws + wa) and
                    len(s.workers("shortener")) == 3 and
                    len(s.workers("auth")) == len(wa))
        assert _wait(resized, 10, 0.1), \
            "shortener_workers = 3 not in force 10 s after HUP: %r" % (
                status(s))
        time.sleep(0.5)
        pids = set(s.workers("shortener")) | set(s.workers("auth"))
        # A broken file: refused, and nothing changes.
        with open(s.conf_path, "w") as f:
            f.write(s.conf_text({"shortener_workers": 1}) +
                    "no_such_key = 1\n")
        s.signal_shortd(signal.SIGHUP)
        assert _wait(lambda: "keeping the running configuration" in
                     s.shortd_log(), 5), \
            "no log line refusing the broken file:\n%s" % (
                s.shortd_log()[-2000:])
        time.sleep(1)
    finally:
        stop.set()
        for t in threads:
            t.join(40)
    assert not failures, "%d of %d requests failed across HUP:\n%s" % (
        len(failures), counts["n"], "\n".join(failures[:10]))
    assert counts["n"] > 10, counts
    st = status(s)
    assert st["generation"] == 1, "a broken file made a new generation"
    assert set(s.workers("shortener")) | set(s.workers("auth")) == pids, \
        "workers changed after a refused reload"
    assert "no_such_key" in s.shortd_log()
    assert s.shortd_running()
    r = s.http("GET", "/" + i)
    assert r.status_code == 301, _show(r)


# ------------------------------------------------------------------
# Status and metrics
# ------------------------------------------------------------------

@restoring
def test_metrics_answer_while_every_worker_is_blocked(s):
    s.restart_shortd({"shortener_workers": 2,
                      "shortener_request_timeout": 0})
    token, i, url = _link(s, "pm")     # auth: 201 + 200; shortener: 201
    for _ in range(5):
        r = s.http("GET", "/" + i)
        assert r.status_code == 301, _show(r)
    for n in range(3):
        r = s.http("GET", "/nO%04d" % n)
        assert r.status_code == 404, _show(r)
    expect = {("auth", "2xx"): 2, ("shortener", "2xx"): 1,
              ("shortener", "3xx"): 5, ("shortener", "4xx"): 3}

    def check_counts(ms, expect, what):
        for pool in ("auth", "shortener"):
            total = 0
            for cls in ("1xx", "2xx", "3xx", "4xx", "5xx"):
                got = metric(ms, "shortd_requests_total", pool=pool,
                             **{"class": cls})
                want = expect.get((pool, cls), 0)
                assert got == want, "%s: requests_total{%s,%s} = %r, " \
                    "want %d" % (what, pool, cls, got, want)
                total += want
            got = metric(ms, "shortd_request_duration_seconds_count",
                         pool=pool)
            assert got == total, "%s: duration count{%s} = %r, want %d" % (
                what, pool, got, total)
            inf = metric(ms, "shortd_request_duration_seconds_bucket",
                         pool=pool, le="+Inf")
            assert inf == total, (what, pool, inf)

    check_counts(metrics(s), expect, "before blocking")
    lock = RowLock(s, i)
    threads = []
    try:
        for n in range(2):
            threads.append(_spawn(_put, s, token, i, url + "/%d" % n))
        assert _wait(lambda: pool_status(status(s), "shortener")
                     ["workers"]["working"] == 2, 10, 0.1), \
            "both workers not blocked: %r" % status(s)
        blocked = time.time()
        # Two more requests: no worker can take them; they wait in the
        # listen queue.
        for n in range(2):
            threads.append(_spawn(lambda: s.http("GET", "/" + i,
                                                 timeout=30)))
        assert _wait(lambda: pool_status(status(s), "shortener")
                     ["listen_queue"] == 2, 10, 0.1), \
            "the listen queue does not show 2 waiting: %r" % (
                pool_status(status(s), "shortener"))
        ms = metrics(s)
        assert metric(ms, "shortd_workers", pool="shortener",
                      state="working") == 2, ms
        assert metric(ms, "shortd_workers", pool="shortener",
                      state="idle") == 0, ms
        assert metric(ms, "shortd_listen_queue", pool="shortener") == 2, ms
        assert metric(ms, "shortd_listen_queue_max", pool="shortener") > 2
        check_counts(ms, expect, "while blocked")
        st = status(s)
        busy = [w for w in workers_of(st, "shortener")
                if w["state"] == "working"]
        assert len(busy) == 2 and all(
            w["method"] == "PUT" and w["path"] == "/" + i and
            w["state_seconds"] >= 0 for w in busy), busy
        assert all(w["pid"] in s.workers("shortener") for w in busy), busy
        # Hold the lock long enough for the master to look several
        # times (it does every 0.1 s) and for the PUTs to land in the
        # histogram above 0.25 s.
        time.sleep(max(0, blocked + 0.6 - time.time()))
    finally:
        lock.release()
    rs = _results(threads)
    assert [r.status_code for r in rs] == [200, 200, 301, 301], \
        [_show(r) for r in rs]
    expect[("shortener", "2xx")] += 2
    expect[("shortener", "3xx")] += 2
    assert _wait(lambda: pool_status(status(s), "shortener")["workers"]
                 ["idle"] == 2, 5)
    ms = metrics(s)
    check_counts(ms, expect, "after")
    assert metric(ms, "shortd_workers_max_reached_total",
                  pool="shortener") >= 1, ms
    assert metric(ms, "shortd_db_reconnects_total", pool="shortener") == 0
    # The two PUTs, blocked for over 0.6 s, are in the upper buckets.
    total = metric(ms, "shortd_request_duration_seconds_count",
                   pool="shortener")
    assert metric(ms, "shortd_request_duration_seconds_bucket",
                  pool="shortener", le="0.25") <= total - 2, ms
    assert metric(ms, "shortd_request_duration_seconds_sum",
                  pool="shortener") >= 1.2, ms


@restoring
def test_max_requests_recycles_workers(s):
    s.restart_shortd({"shortener_workers": 2,
                      "shortener_max_requests": 3})
    token, i, url = _link(s, "pr")      # one request: POST /
    first = set(s.workers("shortener"))
    for n in range(11):
        r = s.http("GET", "/" + i)
        assert r.status_code == 301, "GET #%d with recycling: %s" % (
            n, _show(r))
    # 12 requests, at most 3 per worker, at most 2 workers alive with
    # fewer: at least 3 workers served their 3 and were replaced.

    def recycled():
        ms = metrics(s)
        n = metric(ms, "shortd_worker_restarts_total", pool="shortener",
                   reason="max_requests")
        return n if n >= 3 else None
    n = _wait(recycled, 10, 0.1)
    assert n, "max_requests = 3, 12 requests: restarts %r" % (
        {k: v for k, v in metrics(s).items() if "restart" in k[0]})
    now = _wait(lambda: (lambda w: w if len(w) == 2 and not w & first
                         else None)(set(s.workers("shortener"))), 10)
    assert now, "workers %r not replaced (now %r)" % (
        first, s.workers("shortener"))
    # One that served its 3 is gone once it has exited (a sanitizer
    # build checks for leaks first, which takes a moment).
    past = _wait(lambda: not [w for w in workers_of(status(s), "shortener")
                              if w["requests"] >= 3], 10, 0.1)
    assert past, "a worker past max_requests: %r" % (
        workers_of(status(s), "shortener"),)
    ms = metrics(s)
    assert metric(ms, "shortd_worker_restarts_total", pool="shortener",
                  reason="crash") == 0, ms
    assert "served max_requests" in s.shortd_log()


@restoring
def test_crash_loop_backs_off_and_is_counted(s):
    s.restart_shortd({"shortener_workers": 1})
    for n in range(4):
        pids = s.wait_workers("shortener", 1, timeout=15)
        assert pids, "no shortener worker to kill (round %d)" % n
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        _wait(lambda: not set(pids) & set(s.workers("shortener")), 5)
    assert s.wait_workers("shortener", 1, timeout=15), \
        "the pool stayed empty after the crashes"
    assert "died young" in s.shortd_log(), s.shortd_log()[-2000:]
    ms = metrics(s)
    assert metric(ms, "shortd_worker_restarts_total", pool="shortener",
                  reason="crash") == 4, ms


def test_status_locations_are_loopback_only(s):
    def raw_from(src, path):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as c:
            c.settimeout(10)
            c.bind((src, 0))
            c.connect((s.host, s.port))
            c.sendall(("GET %s HTTP/1.0\r\nHost: x\r\n\r\n" % path)
                      .encode())
            out = b""
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    break
                out += chunk
        head, _, body = out.partition(b"\r\n\r\n")
        return head.decode(errors="replace"), body

    for path in ("/metrics", "/status"):
        head, body = raw_from("127.0.0.1", path)
        assert head.startswith("HTTP/1.1 200"), (path, head)
        head, body = raw_from("127.0.0.2", path)
        assert head.startswith("HTTP/1.1 403"), \
            "%s from 127.0.0.2 (not loopback-only?): %s" % (path, head)
        assert json.loads(body).get("detail") == "forbidden", body
        assert "application/json" in head, head
    r = s.http("POST", "/metrics")
    assert r.status_code == 405 and r.headers.get("Allow") == "GET, HEAD", \
        _show(r)
    r = s.http("HEAD", "/metrics")
    assert r.status_code == 200 and r.content == b"", _show(r)
    st = status(s)
    assert st["master_pid"] == s.master_pid, st
    assert {p["name"] for p in st["pools"]} == {"auth", "shortener"}
    assert s.workers("status"), "no status process under the master"


def test_pool_settings_are_checked(s):
    def refused(overrides, word):
        p = s.shortd_check(overrides)
        out = p.stdout + p.stderr
        assert p.returncode != 0, "shortd -t accepted %r:\n%s" % (
            overrides, out)
        assert word in out, "shortd -t on %r does not name %s:\n%s" % (
            overrides, word, out)

    refused({"shortener_workers_min": 5, "shortener_workers_max": 4},
            "shortener_workers_max")
    refused({"auth_spare_min": 4, "auth_spare_max": 3}, "auth_spare_max")
    refused({"auth_workers_max": -1}, "auth_workers_max")
    # 0: one worker per online CPU, never below workers_min.
    p = s.shortd_check({"auth_workers_max": 0, "auth_workers_min": 1})
    assert p.returncode == 0, p.stdout + p.stderr
    assert "auth_workers_max = %d" % os.cpu_count() in p.stdout, p.stdout
    p = s.shortd_check({"auth_workers_max": 0,
                        "auth_workers_min": os.cpu_count() + 1})
    assert p.returncode == 0, p.stdout + p.stderr
    assert "auth_workers_max = %d" % (os.cpu_count() + 1) in p.stdout, \
        p.stdout
    refused({"shortener_request_timeout": -1}, "shortener_request_timeout")
    refused({"status_listen": s.shortener_sock}, "status_listen")
    # A static pool: both bounds become its size.
    p = s.shortd_check({"auth_workers": 5})
    assert p.returncode == 0, p.stdout + p.stderr
    assert "auth_workers_min = 5" in p.stdout and \
        "auth_workers_max = 5" in p.stdout, p.stdout
    p = s.shortd_check({"status_listen": ""})
    assert p.returncode == 0, p.stdout + p.stderr


def _uids(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:]]
    return None


@restoring
def test_privileges_dropped_to_user(s):
    import pwd
    nobody = pwd.getpwnam("nobody")
    s.restart_shortd({"user": "nobody"})
    token, i, url = _link(s, "pu")
    r = s.http("GET", "/" + i)
    assert r.status_code == 301, _show(r)
    if os.geteuid() != 0:
        assert "not started as root" in s.shortd_log()
        return
    assert "running as nobody" in s.shortd_log(), s.shortd_log()[-2000:]
    pids = [s.master_pid] + s.workers("auth") + s.workers("shortener") + \
        s.workers("status")
    for pid in pids:
        assert _uids(pid) == [nobody.pw_uid] * 4, \
            "process %d runs with uids %r, not nobody's" % (pid, _uids(pid))
    for sock in (s.auth_sock, s.shortener_sock, s.status_sock):
        assert os.stat(sock).st_uid == nobody.pw_uid, sock
    assert metrics(s)
