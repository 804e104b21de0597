"""
End-to-end cases for the shortener workers' redirect cache (issue 7):
a change of a link is seen by the very next request whichever worker
serves it, with every worker's cache warmed first: PUT of the URL,
DELETE of a link, DELETE / (all of a user's links), a PUT of the expiry
(and an expiry reached while cached), and a visit limit that still
stops exactly.  Changes made behind shortd's back (SQL, as another
instance on the same database would) show once redirect_cache_ttl has
passed.  The answer from the cache is the answer from the database,
byte for byte, and redirect_cache = 0 turns it off.

The cases run a static pool of two shortener workers (nginx opens a
connection per request, so both serve) and check from /status that
both took part in the warm-up, and from /metrics that the cache
answered, so none can pass with the cache off or one worker idle.  They
use a TTL of a minute, so that only the version counters, never the
TTL, can make a change visible in time.
"""

import functools
import re
import time

WORKERS = 2
LONG_TTL = 60000            # ms: longer than any case
SHORT_TTL = 300             # ms: the case of a change behind shortd's back
AFTER = 40                  # requests checked after a change
METRIC_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
HITS = "shortd_redirect_cache_hits_total"
MISSES = "shortd_redirect_cache_misses_total"


def _show(r):
    return "%d %r %r" % (r.status_code,
                         {k: v for k, v in r.headers.items()
                          if k in ("Location", "Cache-Control")},
                         r.content[:200])


def cached(**overrides):
    """Run a case with a static pool of WORKERS shortener workers and
    the cache on (a long TTL unless said otherwise), then go back to
    the base configuration."""
    def wrap(fn):
        @functools.wraps(fn)
        def case(s):
            conf = {"shortener_workers": WORKERS,
                    "redirect_cache_ttl": LONG_TTL}
            conf.update(overrides)
            s.restart_shortd(conf)
            s.wait_workers("shortener", WORKERS)
            try:
                return fn(s)
            finally:
                s.restart_shortd()
        return case
    return wrap


def _metrics(s):
    r = s.http("GET", "/metrics", timeout=10)
    assert r.status_code == 200, "GET /metrics: %s" % _show(r)
    out = {}
    for line in r.text.splitlines():
        m = METRIC_RE.match(line)
        if line and not line.startswith("#") and m:
            out[m.group(1)] = out.get(m.group(1), 0) + float(m.group(3))
    return out


def _served(s):
    """Requests served so far by each shortener worker: {pid: n}."""
    r = s.http("GET", "/status", timeout=10)
    assert r.status_code == 200, "GET /status: %s" % _show(r)
    return {w["pid"]: w["requests"] for w in r.json()["workers"]
            if w["pool"] == "shortener"}


def _warm(s, links, rounds=20, method="GET", ttl_passes=False):
    """GET (or HEAD) each of links {id: (status, location)} rounds
    times, asserting the answers and that every shortener worker served
    a fair share of them; return the cache hits and misses the warm-up
    made.  Unless the TTL may pass meanwhile (ttl_passes), each worker
    reads each link once and finds it in its cache after that."""
    m0, before = _metrics(s), _served(s)
    n = 0
    for _ in range(rounds):
        for i, (status, loc) in links.items():
            r = s.http(method, "/" + i)
            assert r.status_code == status and \
                r.headers.get("Location") == loc, \
                "warm-up %s /%s: %s" % (method, i, _show(r))
            n += 1
    after = _served(s)
    assert len(after) == WORKERS, "shortener workers: %r" % after
    share = {pid: after[pid] - before.get(pid, 0) for pid in after}
    # With a connection per request both workers take requests; one
    # that served less than a tenth would leave the case proving
    # little about it.
    assert all(v >= n // 10 for v in share.values()), \
        "a worker sat the warm-up out: %r of %d" % (share, n)
    m1 = _metrics(s)
    hits, misses = m1[HITS] - m0[HITS], m1[MISSES] - m0[MISSES]
    assert hits + misses == n, "lookups %d + %d for %d requests" % (
        hits, misses, n)
    assert ttl_passes or misses <= WORKERS * len(links), \
        "%d misses for %d links on %d workers" % (misses, len(links),
                                                  WORKERS)
    return hits, misses


def _link(s, prefix, **extra):
    user, pw, tok = s.new_user(prefix)
    url = "https://example.org/cache/%s" % user
    body = {"value": url}
    body.update(extra)
    r = s.http("POST", "/", body, token=tok)
    assert r.status_code == 201, "POST /: %s" % _show(r)
    return tok, r.json()["id"], url


def _all(s, ids, status, loc=None, method="GET", n=AFTER):
    """The next n requests, spread over ids, all answer status (and
    Location loc)."""
    for k in range(n):
        i = ids[k % len(ids)]
        r = s.http(method, "/" + i)
        assert r.status_code == status and \
            r.headers.get("Location") == loc, \
            "%s /%s, request %d after the change: want %d %r, got %s" % (
                method, i, k + 1, status, loc, _show(r))


@cached()
def test_put_seen_by_every_worker(s):
    tok, i, url = _link(s, "cput")
    _warm(s, {i: (301, url)})
    _warm(s, {i: (301, url)}, rounds=4, method="HEAD")
    new = url + "/moved"
    r = s.http("PUT", "/" + i, {"url": new}, token=tok)
    assert r.status_code == 200, "PUT: %s" % _show(r)
    _all(s, [i], 301, new)
    _all(s, [i], 301, new, method="HEAD", n=10)
    # And the new target is cached in turn.
    hits, _ = _warm(s, {i: (301, new)})
    assert hits > 0
    # A failed PUT (400) changes nothing, cached or not.
    r = s.http("PUT", "/" + i, {"url": "not a url"}, token=tok)
    assert r.status_code == 400, _show(r)
    _all(s, [i], 301, new, n=10)


@cached()
def test_delete_seen_by_every_worker(s):
    tok, i, url = _link(s, "cdel")
    tok2, j, url2 = _link(s, "cdel2")
    _warm(s, {i: (301, url), j: (301, url2)})
    r = s.http("DELETE", "/" + i, token=tok)
    assert r.status_code == 204, "DELETE: %s" % _show(r)
    _all(s, [i], 404)
    # The other link, cached in the same workers, still redirects.
    _all(s, [j], 301, url2, n=10)


@cached()
def test_delete_all_seen_by_every_worker(s):
    user, pw, tok = s.new_user("call")
    mine = {}
    for k in range(3):
        url = "https://example.org/cache/%s/%d" % (user, k)
        mine[s.shorten(tok, url)] = (301, url)
    tok2, other, url2 = _link(s, "call2")
    links = dict(mine)
    links[other] = (301, url2)
    _warm(s, links)
    r = s.http("DELETE", "/", token=tok)
    assert r.status_code == 404 and r.json().get("deleted") == 3, \
        "DELETE /: %s" % _show(r)
    _all(s, list(mine), 404)
    _all(s, [other], 301, url2, n=10)


@cached()
def test_expiry_changes_seen_by_every_worker(s):
    # Expired by a PUT into the past: 410 at once.
    tok, i, url = _link(s, "cexp")
    _warm(s, {i: (301, url)})
    r = s.http("PUT", "/" + i, {"expires_at": "2000-01-01T00:00:00Z"},
               token=tok)
    assert r.status_code == 200 and r.json().get("state") == "expired", \
        "PUT expires_at: %s" % _show(r)
    _all(s, [i], 410)
    # And back: the limit cleared, it redirects again.
    r = s.http("PUT", "/" + i, {"expires_at": None}, token=tok)
    assert r.status_code == 200, _show(r)
    _all(s, [i], 301, url)

    # Expiring soon, cached, then reached: the cache checks the expiry
    # on every hit (the long TTL would keep it otherwise).
    tok, j, url = _link(s, "cexp2")
    _warm(s, {j: (301, url)}, rounds=5)
    expires = time.time() + 4
    r = s.http("PUT", "/" + j, {"expires_in": 4}, token=tok)
    assert r.status_code == 200, "PUT expires_in: %s" % _show(r)
    hits, _ = _warm(s, {j: (301, url)}, rounds=3)
    assert hits > 0
    time.sleep(max(0, expires - time.time()) + 0.2)
    m0 = _metrics(s)
    _all(s, [j], 410)
    m1 = _metrics(s)
    assert m1[HITS] - m0[HITS] >= AFTER - WORKERS, \
        "the 410s did not come from the cache: %r -> %r" % (m0, m1)


@cached()
def test_visit_limit_holds_with_the_cache(s):
    tok, i, url = _link(s, "cmax", max_visits=5)
    # HEAD is not counted: warm-up attempts of all kinds.
    for _ in range(20):
        r = s.http("HEAD", "/" + i)
        assert r.status_code == 301, _show(r)
    m0 = _metrics(s)
    for k in range(5):
        r = s.http("GET", "/" + i)
        assert r.status_code == 301 and r.headers.get("Location") == url, \
            "visit %d of 5: %s" % (k + 1, _show(r))
        assert r.headers.get("Cache-Control") == "no-store", _show(r)
    _all(s, [i], 410)
    m1 = _metrics(s)
    assert m1[HITS] == m0[HITS], "a link with a visit limit was cached"
    assert s.sql("SELECT visits FROM urls WHERE id = %s", (i,))[0][0] == 5
    # The limit lifted: it redirects, now from the cache too; set again
    # (to what was counted plus 2): two more visits, then 410 again.
    r = s.http("PUT", "/" + i, {"max_visits": None}, token=tok)
    assert r.status_code == 200, _show(r)
    hits, _ = _warm(s, {i: (301, url)})
    assert hits > 0
    _all(s, [i], 301, url, n=4)
    # Visits of unlimited links are flushed within about a second.
    deadline = time.time() + 15
    want = 5 + 20 + 4
    while time.time() < deadline and s.sql(
            "SELECT visits FROM urls WHERE id = %s", (i,))[0][0] < want:
        time.sleep(0.1)
    got = s.sql("SELECT visits FROM urls WHERE id = %s", (i,))[0][0]
    assert got == want, "visits counted: %d, want %d" % (got, want)
    r = s.http("PUT", "/" + i, {"max_visits": want + 2}, token=tok)
    assert r.status_code == 200, _show(r)
    for k in range(2):
        r = s.http("GET", "/" + i)
        assert r.status_code == 301, "visit %d of 2 left: %s" % (k + 1,
                                                                 _show(r))
    _all(s, [i], 410)


@cached()
def test_cached_answer_is_the_same(s):
    """Status, headers (but Date) and body of an answer from the cache
    are those of the first, read from the database."""
    tok, i, url = _link(s, "csame")
    tok, j, url2 = _link(s, "csame2", expires_in=30 * 86400)
    for k in (i, j):
        for method in ("GET", "HEAD"):
            m0 = _metrics(s)
            rs = [s.http(method, "/" + k) for _ in range(12)]
            m1 = _metrics(s)
            assert m1[HITS] - m0[HITS] >= 12 - WORKERS, (m0, m1)
            want = [(r.status_code, sorted((h, v) for h, v in
                                           r.headers.items() if h != "Date"),
                     r.content) for r in rs]
            assert all(w == want[0] for w in want), \
                "%s /%s answers differ: %r" % (method, k, want)


@cached(redirect_cache_ttl=SHORT_TTL)
def test_change_behind_shortd_shows_after_the_ttl(s):
    """Another instance (here: SQL) changes a link: the workers cannot
    know, the TTL bounds how long they answer the old target."""
    tok, i, url = _link(s, "cttl")
    hits, _ = _warm(s, {i: (301, url)}, rounds=10, ttl_passes=True)
    assert hits > 0
    new = url + "/elsewhere"
    s.sql("UPDATE urls SET value = %s WHERE id = %s", (new, i))
    time.sleep(SHORT_TTL / 1000.0 + 0.2)
    _all(s, [i], 301, new)
    s.sql("DELETE FROM urls WHERE id = %s", (i,))
    time.sleep(SHORT_TTL / 1000.0 + 0.2)
    _all(s, [i], 404)


@cached(redirect_cache=0)
def test_cache_off(s):
    tok, i, url = _link(s, "coff")
    m0 = _metrics(s)
    _all(s, [i], 301, url)
    new = url + "/moved"
    r = s.http("PUT", "/" + i, {"url": new}, token=tok)
    assert r.status_code == 200, _show(r)
    _all(s, [i], 301, new)
    m1 = _metrics(s)
    assert m1[HITS] == m0[HITS] and m1[MISSES] == m0[MISSES], \
        "redirect_cache = 0 still looks things up: %r -> %r" % (m0, m1)
