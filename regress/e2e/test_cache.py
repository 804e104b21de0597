"""
End-to-end cases for the shortener pool's redirect cache (issues 7 and
17: one cache that all the pool's workers share):
a change of a link is seen by the very next request whichever worker
serves it, with every worker's cache warmed first: PUT of the URL,
DELETE of a link, DELETE / (all of a user's links), a PUT of the expiry
(and an expiry reached while cached), and a visit limit that still
stops exactly.  Changes made behind shortd's back (SQL, as another
instance on the same database would) show once redirect_cache_ttl has
passed.  The answer from the cache is the answer from the database,
byte for byte, and redirect_cache = 0 turns it off.

The cases run a static pool of two shortener workers.  nginx keeps
FastCGI connections, so one worker may serve every request of a test
client; to have each worker serve, a case holds one worker in a PUT of
another link whose row the test has locked (the master then hands that
worker's idle connections to the other), sends its requests, and swaps
(_each_worker).  /status shows which worker served, /metrics that the
cache answered, so no case can pass with the cache off or a worker
left out.  They use a TTL of a minute, so that only the version
counters, never the TTL, can make a change visible in time.
"""

import functools
import signal
import threading
import time

WORKERS = 2
LONG_TTL = 60000            # ms: longer than any case
SHORT_TTL = 300             # ms: the case of a change behind shortd's back
AFTER = 40                  # requests checked after a change
FLUSH_MS = 60000            # ms: visit counts are written when the
                            # workers stop (a HUP), not while a case
                            # holds a worker
HELD_S = 0.3                # a held worker has handed its connections
                            # over after the master's tick (0.1 s)
HITS = "shortd_redirect_cache_hits_total"
HOLD = []                   # token and two links of the case's holder
ID_KEEP = 64                # longest custom id
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
                    "redirect_cache_ttl": LONG_TTL,
                    "visits_flush_ms": FLUSH_MS}
            conf.update(overrides)
            s.restart_shortd(conf)
            s.wait_workers("shortener", WORKERS)
            HOLD[:] = _holder(s)
            try:
                return fn(s)
            finally:
                s.restart_shortd()
        return case
    return wrap


def _holder(s):
    """A user and two links to hold workers with -> [token, id, id].
    The ids sort before any other (ascii_bin): the locks that a visit
    flush takes around the ids of deleted links (next-key locks on the
    following row) then never fall on a row the test holds."""
    user, pw, tok = s.new_user("chold")
    out = [tok]
    for k in range(2):
        i = "000hold%d%s" % (k, user.replace(".", "").replace("@", ""))
        r = s.http("POST", "/", {"value": "https://example.org/hold",
                                 "id": i[:ID_KEEP]}, token=tok)
        assert r.status_code == 201, "POST / id %s: %s" % (i, _show(r))
        out.append(r.json()["id"])
    return out


def _metrics(s):
    return s.metric_totals()


def _served(s):
    """Requests served so far by each shortener worker: {pid: n}."""
    r = s.http("GET", "/status", timeout=10)
    assert r.status_code == 200, "GET /status: %s" % _show(r)
    return {w["pid"]: w["requests"] for w in r.json()["workers"]
            if w["pool"] == "shortener"}


class _Held:
    """A shortener worker held in PUT /i, i one of HOLD's links, by a
    row lock of the test's, until release().  pid: which worker."""

    def __init__(self, s, i):
        self.s, self.i, self.result = s, i, {}
        self.conn = s.lock_url(i)
        self.thread = threading.Thread(target=self._put, daemon=True)
        self.thread.start()
        self.pid = None
        deadline = time.time() + 15
        while self.pid is None and time.time() < deadline:
            r = s.http("GET", "/status", timeout=10)
            for w in r.json()["workers"]:
                if w["pool"] == "shortener" and \
                        w.get("path") == "/" + i and \
                        w["state_seconds"] >= HELD_S:
                    self.pid = w["pid"]
            time.sleep(0.05)
        if self.pid is None:
            self.release()
            raise AssertionError("no worker held in PUT /%s" % i)

    def _put(self):
        try:
            self.result["r"] = self.s.http(
                "PUT", "/" + self.i, {"url": "https://example.org/held"},
                token=HOLD[0], timeout=60)
        except Exception as e:      # noqa: BLE001 - reported below
            self.result["e"] = e

    def release(self):
        if self.conn is None:
            return
        self.conn.rollback()
        self.conn.close()
        self.conn = None
        self.thread.join(30)
        r = self.result.get("r")
        assert r is not None and r.status_code == 200, \
            "the held PUT /%s: %r" % (self.i, self.result)


def _only(before, after, pid):
    """Assert that pid, and no other worker, served requests between the
    two _served() views."""
    served = {p: after[p] - before.get(p, 0) for p in after}
    assert len(served) == WORKERS and served.get(pid, 0) > 0 and \
        all(v == 0 for p, v in served.items() if p != pid), \
        "want only worker %d to serve: %r" % (pid, served)


def _each_worker(s, fn):
    """Run fn() while one shortener worker is held, so that the other
    serves all of it, then the other way round."""
    first = _Held(s, HOLD[1])
    second = None
    try:
        before = _served(s)
        fn()
        after = _served(s)
        other = [p for p in after if p != first.pid]
        assert len(other) == 1, "shortener workers: %r" % after
        _only(before, after, other[0])
        second = _Held(s, HOLD[2])
        assert second.pid == other[0], (first.pid, second.pid)
        first.release()
        before = _served(s)
        fn()
        _only(before, _served(s), first.pid)
    finally:
        first.release()
        if second is not None:
            second.release()


def _warm(s, links, rounds=5):
    """GET each of links {id: (status, location)} rounds times on each
    worker (_each_worker), asserting the answers; then every worker
    holds every link in its cache (unless the TTL passed meanwhile).
    -> (hits, misses, requests) of the warm-up."""
    m0 = _metrics(s)
    sent = []

    def gets():
        for _ in range(rounds):
            for i, (status, loc) in links.items():
                r = s.http("GET", "/" + i)
                sent.append(i)
                assert r.status_code == status and \
                    r.headers.get("Location") == loc, \
                    "warm-up GET /%s: %s" % (i, _show(r))
    _each_worker(s, gets)
    m1 = _metrics(s)
    hits, misses = m1[HITS] - m0[HITS], m1[MISSES] - m0[MISSES]
    assert hits + misses == len(sent) and hits > 0, \
        "warm-up: %d hits, %d misses for %d requests" % (hits, misses,
                                                        len(sent))
    return hits, misses, len(sent)


def _link(s, prefix, **extra):
    user, pw, tok = s.new_user(prefix)
    url = "https://example.org/cache/%s" % user
    body = {"value": url}
    body.update(extra)
    r = s.http("POST", "/", body, token=tok)
    assert r.status_code == 201, "POST /: %s" % _show(r)
    return tok, r.json()["id"], url


def _all(s, ids, status, loc=None, method="GET", n=AFTER):
    """The next n requests, n / 2 on each worker (_each_worker), spread
    over ids, all answer status (and Location loc)."""
    sent = []

    def check():
        for k in range(n // WORKERS):
            i = ids[k % len(ids)]
            r = s.http(method, "/" + i)
            sent.append(i)
            assert r.status_code == status and \
                r.headers.get("Location") == loc, \
                "%s /%s, request %d after the change: want %d %r, got " \
                "%s" % (method, i, len(sent), status, loc, _show(r))
    _each_worker(s, check)


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
    # The pool read the new target once: the cache is one for all of
    # its workers, so the other worker answered it from there.
    m1 = _metrics(s)
    assert m1[MISSES] - m0[MISSES] == 1 and m1[HITS] > m0[HITS], \
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
    expires = time.time() + 6
    r = s.http("PUT", "/" + j, {"expires_in": 6}, token=tok)
    assert r.status_code == 200, "PUT expires_in: %s" % _show(r)
    _warm(s, {j: (301, url)}, rounds=2)
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
    # (to what was written plus 2): two more visits, then 410 again.
    r = s.http("PUT", "/" + i, {"max_visits": None}, token=tok)
    assert r.status_code == 200, _show(r)
    _, _, n = _warm(s, {i: (301, url)})
    # Cached redirects are counted too: HUP makes the workers write
    # what they counted (and starts new ones, with empty caches).
    old = set(s.workers("shortener"))
    s.signal_shortd(signal.SIGHUP)
    deadline = time.time() + 15
    while time.time() < deadline and (
            set(_served(s)) & old or len(_served(s)) != WORKERS):
        time.sleep(0.1)
    assert not set(_served(s)) & old and len(_served(s)) == WORKERS, \
        "workers after HUP: %r (before: %r)" % (_served(s), old)
    want = 5 + n
    while time.time() < deadline and s.sql(
            "SELECT visits FROM urls WHERE id = %s", (i,))[0][0] < want:
        time.sleep(0.1)
    got = s.sql("SELECT visits FROM urls WHERE id = %s", (i,))[0][0]
    assert got == want, "visits counted: %d, want %d" % (got, want)
    # Cached again by the new workers, then limited: the limit holds at
    # once (the visits counted meanwhile wait in the workers: the
    # database still says want).
    _warm(s, {i: (301, url)})
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
    _warm(s, {i: (301, url)})
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
