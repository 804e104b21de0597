"""
Faults under load (issue 8): while a few threads send a steady stream
of mixed requests (creates, redirects, logins, lists), a fault happens:

  - random workers of both pools are SIGKILLed, one every 0.5 s;
  - MariaDB is SIGKILLed, stays down a moment and is restarted;
  - the shortener workers run out of file descriptors (a lowered
    RLIMIT_NOFILE, filled by kept-alive FastCGI connections).

After each: no request hung (every one has a client time-out), every
failure was a 502/503/504 with a JSON body, every link created with a
201 before or during the fault still redirects to its URL, and the
service recovers by itself (same master, no restart) soon after the
fault ends.  The recovery time is measured and printed; the bound
asserted is a generous 10 s so that a loaded machine does not make
the case flaky (the figure to look at is the printed one).

The fds case also checks that the saturated workers do not spin:
their CPU time while accept() keeps failing stays low.
"""

import json
import os
import random
import resource
import signal
import socket
import struct
import threading
import time

import requests

RECOVERY_BOUND = 10.0   # s, asserted; the printed figure is the measure
CLIENT_TIMEOUT = 30     # s; a request that takes longer "hung"


def _show(r):
    return "%d %r" % (r.status_code, r.content[:200])


class Load:
    """A few threads, each with its own user, sending a mix of
    requests until stopped.  Every answer is classified: ok (what the
    call promises), failed (502/503/504 with a JSON body: allowed
    during a fault) or bad (anything else, time-outs included)."""

    def __init__(self, s, nthreads=3, tag="f"):
        self.s = s
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.results = []       # (t_start, t_end, kind, outcome)
        self.bad = []
        self.created = {}       # id -> url, from 201s only
        self.users = [s.new_user(tag) for _ in range(nthreads)]
        for n, (u, pw, tok) in enumerate(self.users):
            for k in range(2):
                url = "https://example.org/%s/seed%d" % (u, k)
                self.created[s.shorten(tok, url)] = url
        self.threads = [threading.Thread(target=self._run, args=(n,),
                                         daemon=True)
                        for n in range(nthreads)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(CLIENT_TIMEOUT + 10)
        assert not any(t.is_alive() for t in self.threads), \
            "load threads still running"

    def _classify(self, kind, r, want, check=None):
        if r.status_code == want and (check is None or check(r)):
            return "ok"
        if r.status_code in (502, 503, 504):
            try:
                b = json.loads(r.content)
                if r.headers.get("Content-Type", "").startswith(
                        "application/json") and \
                        isinstance(b.get("detail"), str):
                    return "failed"
            except ValueError:
                pass
        return "bad: %s: %s" % (kind, _show(r))

    def _one(self, n, i, rnd):
        s = self.s
        user, pw, tok = self.users[n]
        op = i % 10
        if op == 0:
            kind = "login"
            r = s.http("POST", "/users/login",
                       {"username": user, "password": pw},
                       timeout=CLIENT_TIMEOUT)
            return kind, self._classify(kind, r, 200,
                                        lambda r: "token" in r.json())
        if op in (1, 2):
            kind = "create"
            url = "https://example.org/%s/%d" % (user, i)
            r = s.http("POST", "/", {"value": url}, token=tok,
                       timeout=CLIENT_TIMEOUT)
            out = self._classify(kind, r, 201, lambda r: "id" in r.json())
            if out == "ok":
                with self.lock:
                    self.created[r.json()["id"]] = url
            return kind, out
        if op == 3:
            kind = "list"
            r = s.http("GET", "/?limit=5", token=tok,
                       timeout=CLIENT_TIMEOUT)
            return kind, self._classify(kind, r, 200,
                                        lambda r: "items" in r.json())
        kind = "redirect"
        with self.lock:
            lid, url = rnd.choice(list(self.created.items()))
        r = s.http("GET", "/" + lid, timeout=CLIENT_TIMEOUT)
        return kind, self._classify(
            kind, r, 301, lambda r: r.headers.get("Location") == url)

    def _run(self, n):
        rnd = random.Random(n)
        i = n
        while not self.stop_ev.is_set():
            i += 1
            t0 = time.time()
            try:
                kind, out = self._one(n, i, rnd)
            except Exception as e:  # time-outs, resets: never allowed
                kind, out = "?", "bad: %r" % (e,)
            with self.lock:
                self.results.append((t0, time.time(), kind, out))
                if out.startswith("bad"):
                    self.bad.append("%.2f %s" % (t0, out))
            time.sleep(0.01)

    def summary(self, t_fault, t_end, t_back):
        """Counts of outcomes before, during the fault, while it was
        recovering and after it recovered."""
        out = {}
        for t0, t1, kind, res in self.results:
            phase = "before" if t1 < t_fault else \
                "during" if t0 <= t_end else \
                "recovering" if t0 <= t_back else "after"
            key = phase + " " + res.split(":")[0]
            out[key] = out.get(key, 0) + 1
        return out


def _probe(s, load):
    """One of each kind of call succeeds -> True."""
    user, pw, tok = load.users[0]
    try:
        with load.lock:
            i, url = next(iter(load.created.items()))
        r = s.http("GET", "/" + i, timeout=10)
        if r.status_code != 301 or r.headers.get("Location") != url:
            return False
        r = s.http("POST", "/", {"value": "https://example.org/probe"},
                   token=tok, timeout=10)
        if r.status_code != 201:
            return False
        with load.lock:
            load.created[r.json()["id"]] = "https://example.org/probe"
        r = s.http("POST", "/users/login", {"username": user,
                                            "password": pw}, timeout=10)
        return r.status_code == 200
    except (requests.RequestException, ValueError):
        return False


def _recover(s, load, t_end):
    """Seconds from the fault's end until a probe succeeds."""
    while not _probe(s, load):
        assert time.time() - t_end < RECOVERY_BOUND + 20, \
            "not recovered %.0f s after the fault" % (time.time() - t_end)
        time.sleep(0.05)
    return time.time() - t_end


def _check_after(s, load, master, what, t_fault, t_end, took):
    summary = load.summary(t_fault, t_end, t_end + took)
    print("#   %s: recovered %.2f s after the fault; %s" % (
        what, took, ", ".join("%s %d" % kv for kv in
                              sorted(summary.items()))), flush=True)
    assert not load.bad, "%s: %d unexpected answers:\n%s" % (
        what, len(load.bad), "\n".join(load.bad[:15]))
    assert summary.get("before ok", 0) >= 3, \
        "%s: the load did not run before the fault: %r" % (what, summary)
    assert sum(v for k, v in summary.items() if k.startswith("during")), \
        "%s: no request was made during the fault: %r" % (what, summary)
    assert summary.get("after ok", 0) >= 3 and \
        not summary.get("after failed"), \
        "%s: after recovery: %r" % (what, summary)
    assert s.shortd_running() and s.master_pid == master, \
        "%s: shortd's master did not survive" % what
    assert took < RECOVERY_BOUND, \
        "%s: recovered only %.1f s after the fault" % (what, took)
    # Every link a client was told about is there.
    sess = requests.Session()
    lost = []
    for i, url in sorted(load.created.items()):
        r = sess.get(s.url + "/" + i, allow_redirects=False, timeout=10)
        if r.status_code != 301 or r.headers.get("Location") != url:
            lost.append("%s -> %s: %s" % (i, url, _show(r)))
    assert not lost, "%s: %d of %d created links lost:\n%s" % (
        what, len(lost), len(load.created), "\n".join(lost[:10]))


def _run_fault(s, what, fault, settle=1.0):
    """Load, then fault() (returns when the fault is over), then
    recovery and the checks."""
    master = s.master_pid
    load = Load(s).start()
    try:
        time.sleep(settle)
        t_fault = time.time()
        fault()
        t_end = time.time()
        took = _recover(s, load, t_end)
        time.sleep(1.0)
    finally:
        load.stop()
    _check_after(s, load, master, what, t_fault, t_end, took)


# ------------------------------------------------------------------

def test_workers_killed_under_load(s):
    rnd = random.Random(81)
    killed = []

    def fault():
        for _ in range(8):
            pids = s.workers("auth") + s.workers("shortener")
            if pids:
                victim = rnd.choice(pids)
                try:
                    os.kill(victim, signal.SIGKILL)
                    killed.append(victim)
                except ProcessLookupError:
                    pass
            time.sleep(0.5)
        # The fault ends when both pools are full again.
        for pool in ("auth", "shortener"):
            s.wait_workers(pool, 2, timeout=15)

    _run_fault(s, "SIGKILL of %d random workers" % 8, fault)
    assert len(killed) >= 6, "only %d workers killed" % len(killed)


def test_database_killed_under_load(s):
    def fault():
        proc = s.db_proc
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        time.sleep(2.0)
        s.start_db()

    try:
        _run_fault(s, "MariaDB SIGKILLed, down 2 s, restarted", fault)
    finally:
        if not s.db_running():
            s.start_db()


def _cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        st = f.read()
    fields = st[st.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _nfds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def _fcgi_rec(rtype, content=b""):
    pad = (8 - len(content) % 8) % 8
    return struct.pack(">BBHHBx", 1, rtype, 1, len(content), pad) + \
        content + b"\0" * pad


# GET /nosuchid on a kept connection (FCGI_KEEP_CONN), as a front end
# with keep-alive upstream connections sends it.
_KEPT_GET = (_fcgi_rec(1, struct.pack(">HB5x", 1, 1)) +
             _fcgi_rec(4, b"".join(struct.pack("BB", len(k), len(v)) + k + v
                                   for k, v in ((b"REQUEST_METHOD", b"GET"),
                                                (b"REQUEST_URI",
                                                 b"/nosuchid")))) +
             _fcgi_rec(4) + _fcgi_rec(5))


def _kept_connection(path, wait):
    """A connection that asked one request with keep-alive -> (socket,
    answered within wait seconds)."""
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(path)
    c.sendall(_KEPT_GET)
    c.settimeout(wait)
    got = b""
    try:
        while True:
            chunk = c.recv(65536)
            if not chunk:
                return c, False
            got += chunk
            off = 0
            while len(got) - off >= 8:
                rtype = got[off + 1]
                clen, plen = struct.unpack(">HB", got[off + 4:off + 7])
                if rtype == 3:      # END_REQUEST
                    return c, True
                off += 8 + clen + plen
    except socket.timeout:
        return c, False


def test_descriptors_exhausted_under_load(s):
    """The shortener workers' RLIMIT_NOFILE is lowered to a dozen above
    what they use, and kept-alive FastCGI connections (each asked one
    request and stays open, as a front end's upstream keep-alive does)
    fill it: accept() fails with EMFILE, the workers pause accepting
    instead of spinning, requests queue, and once the connections close
    the service is back."""
    conns = []
    info = {}
    try:
        # A static pool of two (a dynamic one would grow past the
        # lowered limit), kept connections left alone meanwhile, and no
        # visit counting: a worker hands its kept connections to the
        # other before each flush, which would move them between the
        # two tables this case fills.
        s.restart_shortd({"shortener_workers": 2, "idle_timeout": 120,
                          "count_visits": "no"})
        workers = s.wait_workers("shortener", 2)
        assert len(workers) == 2, workers
        for pid in [s.master_pid] + workers:
            soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
            resource.prlimit(pid, resource.RLIMIT_NOFILE,
                             (_nfds(pid) + 12, hard))
        limits = {pid: resource.prlimit(pid, resource.RLIMIT_NOFILE)[0]
                  for pid in workers}

        def fault():
            log_at = len(s.shortd_log())
            # Fill both workers' tables, until a connection is no
            # longer answered (it waits in the listen queue).
            deadline = time.time() + 30
            queued = 0
            while time.time() < deadline and len(conns) < 200:
                full = all(_nfds(p) >= limits[p] for p in workers)
                c, answered = _kept_connection(s.shortener_sock,
                                               1.0 if full else 5.0)
                conns.append(c)
                if not answered:
                    queued += 1
                    if full and queued >= 2:
                        break
            assert all(_nfds(p) >= limits[p] for p in workers) and \
                queued >= 2, \
                "workers not saturated: %r of %r, %d connections, %d " \
                "not answered" % ({p: _nfds(p) for p in workers}, limits,
                                  len(conns), queued)
            # Saturated: no spinning on the ready listening socket.
            cpu0 = {p: _cpu_s(p) for p in workers}
            time.sleep(2.5)
            info["cpu"] = {p: _cpu_s(p) - cpu0[p] for p in workers}
            info["paused"] = s.shortd_log()[log_at:].count(
                "accept: pausing")
            info["conns"] = len(conns)
            # Descriptors free up: the fault is over.
            for c in conns:
                c.close()
            conns.clear()

        _run_fault(s, "shortener workers out of descriptors", fault)
        print("#   saturated with %d kept connections: worker CPU %s in "
              "2.5 s, %d accept pauses logged" % (
                  info["conns"], ", ".join("%.3f s" % v for v in
                                           info["cpu"].values()),
                  info["paused"]), flush=True)
        assert info["paused"] > 0, "no 'accept: pausing' in the log"
        assert "lost in transfer" not in s.shortd_log(), \
            "a connection handed over was lost"
        for pid, cpu in info["cpu"].items():
            assert cpu < 0.5, \
                "worker %d used %.2f s of CPU in 2.5 s while out of " \
                "descriptors: a busy loop" % (pid, cpu)
        # Back for good: a burst of new connections is served.
        for n in range(20):
            r = s.http("GET", "/nosuchid%d" % n, timeout=10)
            assert r.status_code == 404, _show(r)
    finally:
        for c in conns:
            c.close()
        s.restart_shortd()
