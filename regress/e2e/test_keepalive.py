"""
End-to-end cases for kept FastCGI connections between nginx and the
shortener pool (etc/nginx-local.conf.in: upstream keepalive and
fastcgi_keep_conn on).

A kept connection must never pin a worker (DESIGN.md: with blocking
workers, connections beyond the worker count wait unaccepted until
nginx's read timeout), and a worker closing one (idle timeout, HUP)
must never cost a client its request, a POST included.
"""

import random
import signal
import threading
import time

import stack


def _fastcgi_conns(s, pool="shortener"):
    """FastCGI connections the pool's workers hold: their sockets but
    the listening one (the master holds it too) and the database's."""
    def sockets(pid):
        out = set()
        try:
            for fd in stack.os.listdir("/proc/%d/fd" % pid):
                try:
                    t = stack.os.readlink("/proc/%d/fd/%s" % (pid, fd))
                except OSError:
                    continue
                if t.startswith("socket:"):
                    out.add(t)
        except OSError:
            pass
        return out
    master = sockets(s.master_pid)
    return sum(max(0, len(sockets(p) - master) - 1)
               for p in s.workers(pool))


def _links(s, n, prefix):
    user, pw, token = s.new_user(prefix)
    links = {}
    for k in range(n):
        url = "https://example.org/%s/%d" % (user, k)
        links[s.shorten(token, url)] = url
    return user, token, links


def _run_threads(n, fn):
    failures = []
    threads = [threading.Thread(target=fn, args=(k, failures), daemon=True)
               for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "requests still hanging"
    return failures


def test_more_clients_than_workers_and_kept_connections(s):
    """48 clients at once (2 workers, nginx keeps up to 32 connections):
    every redirect answered, none left waiting on a pinned worker."""
    _, _, links = _links(s, 8, "ka")
    ids = list(links)

    def client(k, failures):
        rnd = random.Random(k)
        for _ in range(10):
            i = rnd.choice(ids)
            try:
                # Well under nginx's 60 s fastcgi_read_timeout: a
                # request parked behind a pinned worker fails here.
                r = s.http("GET", "/" + i, timeout=20)
            except Exception as e:
                failures.append("GET /%s: %r" % (i, e))
                continue
            if r.status_code != 301 or r.headers.get("Location") != links[i]:
                failures.append("GET /%s: %d %r" % (i, r.status_code,
                                                     r.content[:200]))

    failures = _run_threads(48, client)
    assert not failures, "%d failed:\n%s" % (len(failures),
                                             "\n".join(failures[:10]))
    # The connections nginx used are still open, kept for the next
    # requests, and the next requests are served on them.
    kept = _fastcgi_conns(s)
    assert kept >= 1, "no FastCGI connection kept after 480 requests"
    for i in ids:
        r = s.http("GET", "/" + i)
        assert r.status_code == 301 and r.headers["Location"] == links[i]


def test_worker_closing_idle_kept_connections(s):
    """Workers that close idle kept connections before nginx does
    (idle_timeout 1 s against nginx's 50 s): the next requests, a
    create (POST, which nginx does not retry) included, still work."""
    try:
        s.restart_shortd({"idle_timeout": 1})
        _, token, links = _links(s, 2, "ki")
        i = next(iter(links))
        for _ in range(5):
            r = s.http("GET", "/" + i)
            assert r.status_code == 301, r.status_code
        kept = _fastcgi_conns(s)
        assert kept >= 1, "nginx kept no connection"
        # Past the workers' idle timeout: they closed those connections.
        deadline = time.time() + 10
        while _fastcgi_conns(s) > 0 and time.time() < deadline:
            time.sleep(0.1)
        assert _fastcgi_conns(s) == 0, "idle connections not closed"
        for k in range(5):
            r = s.http("POST", "/", {"value": "https://example.org/ki%d" % k},
                       token=token)
            assert r.status_code == 201, "POST after idle close: %d %r" % (
                r.status_code, r.content[:200])
            r = s.http("GET", "/" + i)
            assert r.status_code == 301, "GET after idle close: %d" % (
                r.status_code)
            time.sleep(1.5)
    finally:
        s.restart_shortd()


def test_hup_with_kept_connections_drops_no_create(s):
    """HUP retires workers that hold kept connections while clients
    create and follow links without pause: no request fails."""
    _, token, links = _links(s, 4, "kh")
    ids = list(links)
    before = set(s.workers("shortener"))
    stop = threading.Event()
    failures, counts = [], {"get": 0, "post": 0}

    def getter():
        rnd = random.Random(1)
        while not stop.is_set():
            i = rnd.choice(ids)
            try:
                r = s.http("GET", "/" + i, timeout=30)
                if r.status_code != 301:
                    failures.append("GET /%s: %d %r" % (
                        i, r.status_code, r.content[:200]))
                counts["get"] += 1
            except Exception as e:
                failures.append("GET /%s: %r" % (i, e))

    def poster(n):
        k = 0
        while not stop.is_set():
            k += 1
            try:
                r = s.http("POST", "/", {"value": "https://example.org/kh/"
                                         "%d/%d" % (n, k)},
                           token=token, timeout=30)
                if r.status_code != 201:
                    failures.append("POST /: %d %r" % (r.status_code,
                                                       r.content[:200]))
                counts["post"] += 1
            except Exception as e:
                failures.append("POST /: %r" % (e,))

    threads = [threading.Thread(target=getter, daemon=True)] + [
        threading.Thread(target=poster, args=(n,), daemon=True)
        for n in range(3)]
    for t in threads:
        t.start()
    try:
        for _ in range(4):
            time.sleep(0.4)
            s.signal_shortd(signal.SIGHUP)
        time.sleep(0.8)
    finally:
        stop.set()
        for t in threads:
            t.join(40)
    assert not failures, "%d of %d requests failed across HUP:\n%s" % (
        len(failures), counts["get"] + counts["post"] + len(failures),
        "\n".join(failures[:10]))
    assert counts["get"] > 0 and counts["post"] > 0, counts
    print("#   HUP x4 with kept connections: %d GET, %d POST /" % (
        counts["get"], counts["post"]))
    # The retired workers let go of their kept connections and exit,
    # though nginx would have gone on using those connections.
    deadline = time.time() + 15
    while set(s.workers("shortener")) & before and time.time() < deadline:
        time.sleep(0.1)
    left = set(s.workers("shortener")) & before
    assert not left, "retired workers still running: %r" % sorted(left)
