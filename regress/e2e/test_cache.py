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
from concurrent.futures import ThreadPoolExecutor

WORKERS = 2
LONG_TTL = 60000            # ms: longer than any case
SHORT_TTL = 300             # ms: the case of a change behind shortd's back
AFTER = 40                  # requests checked after a change
THREADS = 4                 # requests at a time: both workers serve
WARM_ROUNDS = 20            # most rounds a warm-up may take
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


def _burst(s, method, paths):
    """Send the requests THREADS at a time -> [(path, response)]."""
    with ThreadPoolExecutor(THREADS) as ex:
        return list(ex.map(lambda p: (p, s.http(method, p)), paths))


def _warm(s, links, ttl_passes=False):
    """GET each of links {id: (status, location)}, THREADS at a time,
    asserting the answers, until every shortener worker holds every
    link in its cache: each worker reads each link once (a miss), so
    that is when the misses reach WORKERS per link.  Unless the TTL may
    pass meanwhile (ttl_passes: then until every worker served some).
    -> (hits, misses, requests) of the warm-up."""
    m0, before = _metrics(s), _served(s)
    n = hits = misses = 0
    for _ in range(WARM_ROUNDS):
        paths = ["/" + i for _ in range(8) for i in links]
        for p, r in _burst(s, "GET", paths):
            status, loc = links[p[1:]]
            assert r.status_code == status and \
                r.headers.get("Location") == loc, \
                "warm-up GET %s: %s" % (p, _show(r))
        n += len(paths)
        m1, after = _metrics(s), _served(s)
        hits, misses = m1[HITS] - m0[HITS], m1[MISSES] - m0[MISSES]
        assert hits + misses == n, "lookups %d + %d for %d requests" % (
            hits, misses, n)
        assert ttl_passes or misses <= WORKERS * len(links), \
            "%d misses for %d links on %d workers" % (misses, len(links),
                                                      WORKERS)
        served = [after[pid] - before.get(pid, 0) for pid in after]
        if len(served) == WORKERS and all(served) and (
                ttl_passes or misses == WORKERS * len(links)):
            return hits, misses, n
    raise AssertionError("after %d requests the workers did not all hold "
                         "the links: %d misses for %d links, served %r" % (
                             n, misses, len(links), served))


def _link(s, prefix, **extra):
    user, pw, tok = s.new_user(prefix)
    url = "https://example.org/cache/%s" % user
    body = {"value": url}
    body.update(extra)
    r = s.http("POST", "/", body, token=tok)
    assert r.status_code == 201, "POST /: %s" % _show(r)
    return tok, r.json()["id"], url


def _all(s, ids, status, loc=None, method="GET", n=AFTER):
    """The next n requests (THREADS at a time, spread over ids, more
    until every shortener worker has served some) all answer status
    (and Location loc)."""
    before, sent = _served(s), 0
    for _ in range(WARM_ROUNDS):
        paths = ["/" + ids[k % len(ids)] for k in range(n)]
        for p, r in _burst(s, method, paths):
            sent += 1
            assert r.status_code == status and \
                r.headers.get("Location") == loc, \
                "%s %s, one of %d requests after the change: want %d %r, " \
                "got %s" % (method, p, sent, status, loc, _show(r))
        after = _served(s)
        if len(after) == WORKERS and all(after[pid] - before.get(pid, 0)
                                         for pid in after):
            return
    raise AssertionError("a shortener worker served none of %d requests"
                         % sent)


@cached()
def test_put_seen_by_every_worker(s):
    tok, i, url = _link(s, "cput")
    _warm(s, {i: (301, url)})
    _all(s, [i], 301, url, method="HEAD", n=10)
    new = url + "/moved"
    r = s.http("PUT", "/" + i, {"url": new}, token=tok)
    assert r.status_code == 200, "PUT: %s" % _show(r)
    m0 = _metrics(s)
    _all(s, [i], 301, new)
    _all(s, [i], 301, new, method="HEAD", n=10)
    # Each worker read the new target once, and cached it in turn.
    m1 = _metrics(s)
    assert m1[MISSES] - m0[MISSES] == WORKERS and m1[HITS] > m0[HITS], \
        "after the change: %r -> %r" % (m0, m1)
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
    _warm(s, {j: (301, url)})
    expires = time.time() + 4
    r = s.http("PUT", "/" + j, {"expires_in": 4}, token=tok)
    assert r.status_code == 200, "PUT expires_in: %s" % _show(r)
    _warm(s, {j: (301, url)})
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
    _, _, n = _warm(s, {i: (301, url)})
    # Visits of unlimited links are flushed within about a second.
    deadline = time.time() + 15
    want = 5 + n
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
    hits, _, _ = _warm(s, {i: (301, url)}, ttl_passes=True)
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
