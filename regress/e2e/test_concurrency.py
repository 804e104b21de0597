"""
End-to-end cases for many clients against few workers, and for HUP
under a create load: no client is left waiting on a pinned worker, and
no request is dropped while workers are replaced.

(The shipped nginx config opens a FastCGI connection per request to
the shortener pool; see etc/nginx-local.conf.in for why kept ones are
off.  The workers' handling of FCGI_KEEP_CONN itself is covered by the
FastCGI unit tests and test_hostile.py.)
"""

import random
import signal
import threading
import time

import stack


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


def test_more_clients_than_workers(s):
    """48 clients at once against 2 workers: every redirect answered,
    none left waiting on a pinned worker."""
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
    for i in ids:
        r = s.http("GET", "/" + i)
        assert r.status_code == 301 and r.headers["Location"] == links[i]


def test_hup_under_creates_drops_nothing(s):
    """HUP retires workers while clients create and follow links
    without pause: no request fails."""
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
