"""
End-to-end faults of the shortener pool's shared redirect cache
(issue 17): workers SIGKILLed over and over while they fill a cache far
smaller than the links asked for, and garbage written straight into the
cache's memory.  Every redirect is checked byte for byte against the
link's URL; the only other answer allowed is the 502 of a request whose
worker was killed under it.  That a kill left a slot half-written is
proved by the unit test test_shcache.c (a worker spends too little of
its time in a write for a handful of kills to hit one); here the kills
are real workers, the cache the master's.

The links are written with SQL (thousands, quickly); the ids are
custom-looking 7-character strings, the URLs of every length a cache
entry holds and some longer.
"""

import os
import random
import signal
import threading
import time

import requests

LINKS = 6000                # more than the 4,096 slots of 1 MB
KILLS = 10
ANSWERS = 1000              # redirects checked at least
WORKERS = 4
YOUNG_S = 5.2               # a worker younger than this dying counts
                            # towards the master's crash back-off


def _metrics(s):
    return s.metric_totals()


def _links(s, prefix, n):
    """n links of a new user, written with SQL -> {id: url}."""
    user, pw, tok = s.new_user(prefix)
    rnd = random.Random(prefix)
    now = int(time.time() * 1e6)
    links = {}
    for k in range(n):
        i = "%s%05d" % (prefix[:2], k)
        path = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789-._~%")
                       for _ in range(rnd.randrange(1, 230)))
        links[i] = "https://example.org/%d/%s?q=%d" % (k, path, k)
    rows = [(i, user, u, now, now) for i, u in links.items()]
    conn = s.db_connect()
    try:
        with conn.cursor() as c:
            c.executemany("INSERT INTO urls (id, `user`, value, created_us, "
                          "updated_us) VALUES (%s, %s, %s, %s, %s)", rows)
    finally:
        conn.close()
    return links


def _check(r, i, links, bad):
    """One answer: a redirect to exactly the link's URL, or a 502."""
    try:
        body = r.json()
    except ValueError:
        body = None
    if r.status_code == 301 and r.headers.get("Location") == links[i] \
            and body == {"value": links[i]}:
        return 1
    if r.status_code == 502:
        return 0
    bad.append("GET /%s: %d %r %r" % (i, r.status_code,
                                     r.headers.get("Location"),
                                     r.content[:100]))
    return 0


def _cache_map(pid):
    """(start, end) of the shared cache in pid's address space."""
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            if "shortd-cache" in line:
                a, b = line.split()[0].split("-")
                return int(a, 16), int(b, 16)
    raise AssertionError("no shortd-cache map in worker %d:\n%s" % (
        pid, open("/proc/%d/maps" % pid).read()))


def test_killed_workers_never_leave_a_wrong_answer(s):
    s.restart_shortd({"shortener_workers": WORKERS, "redirect_cache_mb": 1,
                      "redirect_cache_ttl": 60000})
    try:
        s.wait_workers("shortener", WORKERS)
        links = _links(s, "kw", LINKS)
        ids = list(links)
        m0 = _metrics(s)
        stop = threading.Event()
        bad, counts = [], {"ok": 0, "sent": 0}
        lock = threading.Lock()

        def load(seed):
            rnd = random.Random(seed)
            sess = requests.Session()
            while not stop.is_set():
                i = rnd.choice(ids)
                try:
                    r = sess.get(s.url + "/" + i, allow_redirects=False,
                                 timeout=30)
                except requests.RequestException as e:
                    bad.append("GET /%s: %r" % (i, e))
                    continue
                ok = _check(r, i, links, bad)
                with lock:
                    counts["ok"] += ok
                    counts["sent"] += 1

        threads = [threading.Thread(target=load, args=(k,), daemon=True)
                   for k in range(4)]
        for t in threads:
            t.start()
        killed, born = [], {}
        deadline = time.time() + 60
        while len(killed) < KILLS and time.time() < deadline and not bad:
            now = time.time()
            pids = s.workers("shortener")
            for p in pids:
                born.setdefault(p, now)
            old = [p for p in pids if now - born[p] >= YOUNG_S / WORKERS
                   and p not in killed]
            if len(pids) == WORKERS and old:
                p = min(old, key=lambda q: born[q])
                os.kill(p, signal.SIGKILL)
                killed.append(p)
            time.sleep(0.1)
        # However slow the machine, enough answers to have checked.
        while counts["ok"] < ANSWERS and time.time() < deadline + 60 \
                and not bad:
            time.sleep(0.1)
        stop.set()
        for t in threads:
            t.join(60)
        m1 = _metrics(s)
        assert not bad, "%d wrong answers, first: %s" % (len(bad), bad[:5])
        assert len(killed) == KILLS, "killed %d workers" % len(killed)
        hits = m1["shortd_redirect_cache_hits_total"] - \
            m0["shortd_redirect_cache_hits_total"]
        assert counts["ok"] >= ANSWERS and hits > 0, (counts, hits)
        # Nearly every request got its redirect: only those cut by a
        # kill may not have.
        assert counts["sent"] - counts["ok"] <= 4 * KILLS, counts
        print("    %d redirects, %d hits, %d workers killed" % (
            counts["ok"], hits, len(killed)))
    finally:
        s.restart_shortd()


def test_garbage_in_the_cache_is_never_served(s):
    s.restart_shortd({"shortener_workers": 2, "redirect_cache_mb": 1,
                      "redirect_cache_ttl": 60000})
    try:
        pids = s.wait_workers("shortener", 2)
        links = _links(s, "gb", 800)
        bad = []

        def round_(what):
            m0 = _metrics(s)
            ok = sum(_check(s.http("GET", "/" + i), i, links, bad)
                     for i in links)
            assert not bad, "%s: %d wrong answers, first: %s" % (
                what, len(bad), bad[:5])
            assert ok == len(links), "%s: %d of %d redirects" % (
                what, ok, len(links))
            m1 = _metrics(s)
            return {k: m1[k] - m0[k] for k in m1 if k.startswith(
                "shortd_redirect_cache_")}

        # Links whose id and URL fit in an entry (200 bytes) are cached.
        fit = sum(1 for i, u in links.items() if len(i) + len(u) <= 200)
        assert fit >= len(links) // 2, fit
        round_("warm-up")
        d = round_("warm")
        assert d["shortd_redirect_cache_hits_total"] >= 0.9 * fit, (fit, d)
        # Scribble over the cache through one worker's view of it: runs
        # of random bytes at random places, over every slot.
        start, end = _cache_map(pids[0])
        rnd = random.Random(17)
        fd = os.open("/proc/%d/mem" % pids[0], os.O_RDWR)
        try:
            for slot in range(start, end, 256):
                if rnd.random() < 0.7:
                    at = slot + rnd.randrange(256)
                    n = min(rnd.randrange(1, 40), end - at)
                    os.pwrite(fd, os.urandom(n), at)
        finally:
            os.close(fd)
        for k in range(3):
            d = round_("after the garbage, round %d" % (k + 1))
            if k == 0:
                assert d["shortd_redirect_cache_corrupt_total"] > 0, d
        # The links are cached again.
        assert d["shortd_redirect_cache_hits_total"] >= 0.9 * fit, (fit, d)
        assert s.workers("shortener") == pids or \
            sorted(s.workers("shortener")) == sorted(pids), \
            "a worker died: %r -> %r" % (pids, s.workers("shortener"))
    finally:
        s.restart_shortd()
