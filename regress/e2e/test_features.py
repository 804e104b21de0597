"""
End-to-end cases for the link features (issue 10), through nginx and
MariaDB: custom ids, short_url, expiry by time and by visits, visit
counts (GET /:id/stats), reuse, QR codes (GET /:id/qr), the classic
shapes staying as they were, the schema as the contract describes it
and its upgrades from versions 1 and 2.

Each test_*(s) gets the shared running stack (regress/stack.py); a test
that reconfigures shortd puts it back in a finally block.
"""

import datetime
import hashlib
import json
import os
import random
import re
import shutil
import string
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import jwt
import requests

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
RFC3339_RE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")
# visits_flush_ms is 1000 by default: counts reach the database within
# about a second.  Tests wait for them up to this long (a loaded CI
# machine), never assert how fast they came.
FLUSH_WAIT = 15


def _show(r):
    return "%d %r" % (r.status_code, r.content[:300])


def _expect(r, status, what, detail=None):
    assert r.status_code == status, "%s: want %d, got %s" % (what, status,
                                                            _show(r))
    ct = r.headers.get("Content-Type", "")
    assert ct.split(";")[0].strip() == "application/json", \
        "%s: Content-Type %r (%s)" % (what, ct, _show(r))
    body = json.loads(r.content)
    if detail is not None:
        assert body.get("detail") == detail and body.get("message"), \
            "%s: want detail %r: %s" % (what, detail, _show(r))
    return body


def _user(s, tag):
    return s.new_user(tag)[2]


def _rid(n=10):
    return "".join(random.choice(string.ascii_letters) for _ in range(n))


def _create(s, tok, body, status=201, what="POST /"):
    r = s.http("POST", "/", body=body, token=tok)
    return _expect(r, status, "%s %s" % (what, json.dumps(body)))


def _stats(s, tok, i):
    return _expect(s.http("GET", "/%s/stats" % i, token=tok), 200,
                   "GET /%s/stats" % i)


def _wait_visits(s, tok, i, want):
    """Stats of i once its visit count has reached want (or the last
    stats seen when FLUSH_WAIT ran out)."""
    deadline = time.time() + FLUSH_WAIT
    while True:
        st = _stats(s, tok, i)
        if st["visits"] >= want or time.time() > deadline:
            return st
        time.sleep(0.2)


def _rfc3339(t):
    return datetime.datetime.fromtimestamp(
        t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(v):
    """An RFC 3339 time shortd wrote -> unix seconds, fraction kept."""
    m = RFC3339_RE.match(v) if isinstance(v, str) else None
    assert m, "not RFC 3339: %r" % (v,)
    t = datetime.datetime.strptime(v[:19], "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    return t + (float("0" + m.group(1)) if m.group(1) else 0.0)


# ------------------------------------------------------------------
# Custom ids
# ------------------------------------------------------------------

def test_alias_create_and_resolve(s):
    tok = _user(s, "ali")
    alias = "My-Link_" + _rid(6)
    url = "https://example.com/alias?x=1"
    body = _create(s, tok, {"value": url, "id": alias})
    assert body == {"id": alias, "short_url": "%s/%s" % (s.url, alias),
                    "expires_at": None, "max_visits": None}, body
    r = s.http("GET", "/" + alias)
    assert _expect(r, 301, "GET alias") == {"value": url}
    assert r.headers.get("Location") == url, r.headers
    # Case-sensitive like generated ids: another case is another id.
    r = s.http("GET", "/" + alias.lower())
    _expect(r, 404, "GET alias in lower case", "not found")
    body = _create(s, tok, {"value": url, "id": alias.lower()})
    assert body["id"] == alias.lower(), body
    # The longest and the shortest an alias may be.
    for a in ("a" + _rid(63), "z" + _rid(2)):
        assert _create(s, tok, {"value": url, "id": a})["id"] == a
        _expect(s.http("GET", "/" + a), 301, "GET /%s" % a)
    # A form body carries it too.
    a = "form" + _rid(6)
    r = s.http("POST", "/", raw="value=%s&id=%s" % (
        requests.utils.quote(url, safe=""), a), headers=FORM, token=tok)
    assert _expect(r, 201, "form POST with id")["id"] == a


def test_alias_taken(s):
    tok = _user(s, "alt")
    other = _user(s, "alo")
    alias = "taken-" + _rid(6)
    _create(s, tok, {"value": "https://example.com/first", "id": alias})
    for who, url in ((tok, "https://example.com/mine-again"),
                     (other, "https://example.com/theirs")):
        r = s.http("POST", "/", body={"value": url, "id": alias}, token=who)
        _expect(r, 409, "POST an alias that is taken", "duplicate")
    # A generated id is taken in the same way.
    gen = s.shorten(tok, "https://example.com/generated")
    r = s.http("POST", "/", body={"value": "https://example.com/x",
                                  "id": gen}, token=other)
    _expect(r, 409, "POST an alias equal to a generated id", "duplicate")
    # Nothing was overwritten.
    r = s.http("GET", "/" + alias)
    assert r.headers.get("Location") == "https://example.com/first", \
        _show(r)
    r = s.http("GET", "/" + gen)
    assert r.headers.get("Location") == "https://example.com/generated"
    assert s.sql("SELECT COUNT(*) FROM urls WHERE id IN (%s, %s)",
                 (alias, gen))[0][0] == 2


def test_alias_reserved(s):
    tok = _user(s, "alr")
    for word in ("users", "Users", "metrics", "HEALTH", "healthz", "api",
                 "stats", "openapi", "login", "admin", "docs"):
        r = s.http("POST", "/", body={"value": "https://example.com/r",
                                      "id": word}, token=tok)
        body = _expect(r, 400, "POST with reserved id %r" % word, "error")
        assert "reserved" in body["message"], _show(r)
        assert s.sql("SELECT COUNT(*) FROM urls WHERE id = %s",
                     (word,))[0][0] == 0


def test_alias_invalid(s):
    tok = _user(s, "ali")
    for bad in ("ab", "a", "", "-abc", "_abc", "a b", "a/b", "a.b", "a?b",
                "a%20b", "caf\u00e9", "x" * 65, "a\nb", 1234, None, True,
                ["abc"], {"id": "abc"}):
        r = s.http("POST", "/", body={"value": "https://example.com/i",
                                      "id": bad}, token=tok)
        _expect(r, 400, "POST with invalid id %r" % (bad,), "error")
    assert s.sql("SELECT COUNT(*) FROM urls WHERE value = %s",
                 ("https://example.com/i",))[0][0] == 0
    # The URL is still checked first, as in the classic contract.
    r = s.http("POST", "/", body={"value": "nope", "id": "fine-id"},
               token=tok)
    _expect(r, 400, "POST with an invalid URL and a valid id", "error")
    # Without a token, 403 comes before anything else.
    r = s.http("POST", "/", body={"value": "https://example.com/",
                                  "id": "ab"})
    _expect(r, 403, "POST with an invalid id and no token", "forbidden")


# ------------------------------------------------------------------
# short_url and the classic shapes
# ------------------------------------------------------------------

def test_classic_shapes_unchanged(s):
    """A request in the classic shape gets the classic answer, even for
    a link that has limits (the list shows limits only on such links)."""
    tok = _user(s, "cls")
    r = s.http("POST", "/", body={"value": "https://example.com/c"},
               token=tok)
    plain = _expect(r, 201, "classic POST")
    assert set(plain) == {"id"}, _show(r)
    lim = _create(s, tok, {"value": "https://example.com/l",
                           "max_visits": 3})
    assert set(lim) == {"id", "short_url", "expires_at", "max_visits"}
    assert lim["short_url"] == "%s/%s" % (s.url, lim["id"]), lim
    r = s.http("PUT", "/" + plain["id"],
               body={"url": "https://example.com/c2"}, token=tok)
    assert _expect(r, 200, "classic PUT") == {
        "id": plain["id"], "value": "https://example.com/c2"}
    items = _expect(s.http("GET", "/", token=tok), 200, "GET /")["items"]
    assert items == [
        {"id": lim["id"], "value": "https://example.com/l",
         "expires_at": None, "max_visits": 3, "state": "active"},
        {"id": plain["id"], "value": "https://example.com/c2"}], items
    # The scheme comes from the request (nginx passes HTTPS when on).
    r = s.http("POST", "/", body={"value": "https://example.com/h",
                                  "reuse": False},
               headers={"Host": "sho.example:8443"}, token=tok)
    body = _expect(r, 201, "POST with another Host")
    assert body["short_url"] == "http://sho.example:8443/" + body["id"]


# ------------------------------------------------------------------
# Expiry
# ------------------------------------------------------------------

def test_expiry_by_time(s):
    tok = _user(s, "exp")
    life = 3
    t0 = time.time()
    body = _create(s, tok, {"value": "https://example.com/short-lived",
                            "expires_in": life})
    i = body["id"]
    exp = _parse_time(body["expires_at"])
    assert t0 + life - 2 <= exp <= time.time() + life + 1, body
    r = s.http("GET", "/" + i)
    assert r.status_code == 301, "GET before expiry: %s" % _show(r)
    # No cached redirect may outlive the link.
    cc = r.headers.get("Cache-Control", "")
    m = re.match(r"max-age=(\d+)$", cc)
    assert m and int(m.group(1)) <= life, "Cache-Control %r" % cc
    time.sleep(max(0, exp - time.time()) + 0.5)
    for method in ("GET", "HEAD"):
        r = s.http(method, "/" + i)
        assert r.status_code == 410, "%s after expiry: %s" % (method,
                                                             _show(r))
    _expect(s.http("GET", "/" + i), 410, "GET after expiry", "expired")
    # The owner still lists it, with its state, and can read its stats.
    items = _expect(s.http("GET", "/", token=tok), 200, "GET /")["items"]
    assert [x for x in items if x["id"] == i] == [{
        "id": i, "value": "https://example.com/short-lived",
        "expires_at": body["expires_at"], "max_visits": None,
        "state": "expired"}], items
    st = _wait_visits(s, tok, i, 1)
    assert st["state"] == "expired" and st["visits"] == 1, st
    # Expired visits are not counted: after another flush window the
    # count is still the one visit made in time.
    time.sleep(1.5)
    assert _stats(s, tok, i)["visits"] == 1

    # expires_at: in the future works, in the past is refused for a
    # new link; both forms at once are refused; PUT can change or
    # clear the expiry.
    later = _rfc3339(time.time() + 3600)
    body = _create(s, tok, {"value": "https://example.com/later",
                            "expires_at": later})
    j = body["id"]
    assert body["expires_at"] == later, body
    _expect(s.http("GET", "/" + j), 301, "GET before expires_at")
    for bad in ({"expires_at": _rfc3339(time.time() - 60)},
                {"expires_at": "tomorrow"}, {"expires_at": 12},
                {"expires_at": "2030-02-30T00:00:00Z"},
                {"expires_in": 0}, {"expires_in": -5}, {"expires_in": 1.5},
                {"expires_in": "60"},
                {"expires_in": 60, "expires_at": later}):
        bad["value"] = "https://example.com/bad"
        r = s.http("POST", "/", body=bad, token=tok)
        _expect(r, 400, "POST %s" % json.dumps(bad), "error")
    r = s.http("PUT", "/" + j, body={"expires_at": _rfc3339(
        time.time() - 1)}, token=tok)
    body = _expect(r, 200, "PUT expires_at in the past")
    assert body["state"] == "expired" and body["value"] == \
        "https://example.com/later", body
    _expect(s.http("GET", "/" + j), 410, "GET after PUT expiry", "expired")
    r = s.http("PUT", "/" + j, body={"expires_at": None}, token=tok)
    assert _expect(r, 200, "PUT expires_at null") == {
        "id": j, "value": "https://example.com/later", "expires_at": None,
        "max_visits": None, "state": "active"}
    r = s.http("GET", "/" + j)
    assert r.status_code == 301 and r.headers.get("Cache-Control") == \
        "max-age=300", "GET after clearing the expiry: %s %r" % (
            _show(r), r.headers)
    # PUT order stays 404, 403, 400.
    other = _user(s, "exo")
    _expect(s.http("PUT", "/" + j, body={"expires_in": 0}, token=other),
            403, "PUT another user's expiry", "forbidden")
    _expect(s.http("PUT", "/" + j, body={"expires_in": 0}, token=tok),
            400, "PUT expires_in 0", "error")
    _expect(s.http("PUT", "/nope" + _rid(), body={"expires_in": 0},
                   token=tok), 404, "PUT expiry of an unknown id",
            "not found")
    _expect(s.http("PUT", "/" + j, body={}, token=tok), 400,
            "PUT without url or limits", "error")


def test_expiry_by_visits_parallel(s):
    """N parallel redirects more than the limit: exactly max_visits 301s,
    whichever of the workers served them."""
    tok = _user(s, "mxv")
    limit, tries = 5, 24
    i = _create(s, tok, {"value": "https://example.com/limited",
                         "max_visits": limit})["id"]
    # HEAD neither counts nor uses up the limit.
    for _ in range(3):
        r = s.http("HEAD", "/" + i)
        assert r.status_code == 301 and r.content == b"", _show(r)
        assert r.headers.get("Cache-Control") == "no-store", r.headers

    def hit(_):
        # A browser: python-requests' own User-Agent is a bot's, which
        # never uses up a limit (test_analytics.py).
        r = requests.get(s.url + "/" + i, allow_redirects=False, timeout=60,
                         headers={"User-Agent": "Mozilla/5.0 (X11; Linux "
                                  "x86_64; rv:121.0) Gecko/20100101 "
                                  "Firefox/121.0"})
        return r.status_code, r.content

    with ThreadPoolExecutor(tries) as ex:
        got = list(ex.map(hit, range(tries)))
    codes = [c for c, _ in got]
    assert codes.count(301) == limit and codes.count(410) == tries - limit, \
        "want %d x 301 and %d x 410, got %r" % (limit, tries - limit, codes)
    for c, body in got:
        if c == 410:
            assert json.loads(body)["detail"] == "expired", body
    st = _stats(s, tok, i)
    assert st["visits"] == limit and st["max_visits"] == limit and \
        st["state"] == "expired", st
    # Raising the limit gives the link more visits, counted exactly.
    r = s.http("PUT", "/" + i, body={"max_visits": limit + 1}, token=tok)
    assert _expect(r, 200, "PUT max_visits")["state"] == "active"
    _expect(s.http("GET", "/" + i), 301, "GET after raising the limit")
    _expect(s.http("GET", "/" + i), 410, "GET past the new limit",
            "expired")
    assert _stats(s, tok, i)["visits"] == limit + 1
    for bad in (0, -1, 1.5, "3", True, 2 ** 53):
        r = s.http("POST", "/", body={"value": "https://example.com/m",
                                      "max_visits": bad}, token=tok)
        _expect(r, 400, "POST max_visits %r" % (bad,), "error")


# ------------------------------------------------------------------
# Visit counts
# ------------------------------------------------------------------

def test_stats_counts(s):
    tok = _user(s, "sts")
    url = "https://example.com/counted"
    i = s.shorten(tok, url)
    j = s.shorten(tok, url + "/other")
    st = _stats(s, tok, i)
    assert st["visits"] == 0 and st["last_visit_at"] is None, st
    # ... the period's summary of visit analytics (test_analytics.py)
    # and the title and tags (test_search.py).
    assert set(st) == {"id", "value", "visits", "created_at", "updated_at",
                       "last_visit_at", "expires_at", "max_visits",
                       "state", "since", "until", "by_day", "bots",
                       "referers", "countries", "browsers", "os",
                       "devices", "title", "tags"}, st
    assert st["id"] == i and st["value"] == url and st["state"] == "active"
    created = _parse_time(st["created_at"])
    assert abs(created - time.time()) < 600, st
    n, m = 37, 5
    t0 = time.time()
    with ThreadPoolExecutor(8) as ex:
        codes = list(ex.map(lambda k: s.http(
            "GET", "/" + (i if k < n else j)).status_code, range(n + m)))
    assert codes == [301] * (n + m), codes
    for _ in range(4):
        assert s.http("HEAD", "/" + i).status_code == 301
    st = _wait_visits(s, tok, i, n)
    assert st["visits"] == n, "visits %d after %d redirects (%s)" % (
        st["visits"], n, st)
    assert _wait_visits(s, tok, j, m)["visits"] == m
    last = _parse_time(st["last_visit_at"])
    assert t0 - 2 <= last <= time.time() + 1, st
    # No late double counting: another flush window changes nothing.
    time.sleep(1.5)
    assert _stats(s, tok, i)["visits"] == n
    _owner_only_sub(s, tok, i, "stats")
    for path in ("/%s/stats/" % i, "/%s/Stats" % i, "/%s/stats/x" % i):
        _expect(s.http("GET", path, token=tok), 404, "GET " + path)


def _owner_only_sub(s, tok, i, sub):
    """GET /i/sub: the owner's only, token first; 404 for an unknown id;
    HEAD as GET without a body; other methods 405 with Allow."""
    other = _user(s, "own")
    _expect(s.http("GET", "/%s/%s" % (i, sub), token=other), 403,
            "%s of another user's link" % sub, "forbidden")
    _expect(s.http("GET", "/%s/%s" % (i, sub)), 403,
            "%s without a token" % sub, "forbidden")
    _expect(s.http("GET", "/nope%s/%s" % (_rid(), sub), token=tok), 404,
            "%s of an unknown id" % sub, "not found")
    r = s.http("HEAD", "/%s/%s" % (i, sub), token=tok)
    assert r.status_code == 200 and r.content == b"", _show(r)
    for method in ("POST", "PUT", "DELETE"):
        r = s.http(method, "/%s/%s" % (i, sub), token=tok)
        _expect(r, 405, "%s /:id/%s" % (method, sub))
        assert {x.strip() for x in r.headers["Allow"].split(",")} == \
            {"GET", "HEAD"}, r.headers


def test_counts_flushed_on_shutdown(s):
    """A worker that stops gracefully writes what it counted, however
    long its flush interval."""
    tok = _user(s, "fsh")
    i = s.shorten(tok, "https://example.com/flush-on-exit")
    try:
        s.restart_shortd({"visits_flush_ms": "60000"})
        for _ in range(6):
            assert s.http("GET", "/" + i).status_code == 301
        time.sleep(0.5)
        assert _stats(s, tok, i)["visits"] == 0, \
            "counted before the 60 s interval and before the stop"
        s.restart_shortd({})
        assert _stats(s, tok, i)["visits"] == 6
        # count_visits = no: redirects work, nothing is counted.
        s.restart_shortd({"count_visits": "no"})
        assert s.http("GET", "/" + i).status_code == 301
    finally:
        s.restart_shortd({})
    assert _stats(s, tok, i)["visits"] == 6


def test_counts_wait_for_a_locked_row(s):
    """Another session holding a counted link's row (a long transaction,
    an administrator) stalls no worker: redirects of that link and of
    others keep being served, the other link's visits are written
    meanwhile, and once the lock goes the count is exactly the visits
    made: none lost, none written twice.  The flush's short lock wait is
    its own: a PUT on a locked row afterwards waits as long as the
    server says."""
    tok = _user(s, "lkd")
    i = s.shorten(tok, "https://example.com/locked/" + _rid())
    j = s.shorten(tok, "https://example.com/free/" + _rid())
    made = {i: 0, j: 0}
    # One worker: every GET and the PUT below go through the worker
    # whose flushes met the lock.  Two-second flushes: the 40 GETs of
    # the second part fall in one.
    s.restart_shortd({"shortener_workers": 1, "visits_flush_ms": 2000})
    try:
        conn = s.lock_url(i)
        try:
            # Several flush windows with the row held.
            end = time.time() + 6
            while time.time() < end:
                for k in (i, j):
                    try:
                        r = s.http("GET", "/" + k, timeout=3)
                    except requests.RequestException as e:
                        raise AssertionError(
                            "GET /%s not answered within 3 s while another "
                            "session holds /%s's row: %r" % (k, i, e))
                    assert r.status_code == 301, "GET /%s: %s" % (
                        k, _show(r))
                    made[k] += 1
                time.sleep(0.02)
            # The held row keeps back its own link only.
            st = _wait_visits(s, tok, j, made[j])
            assert st["visits"] == made[j], "visits of the free link " \
                "%d, made %d, while the other's row is locked" % (
                    st["visits"], made[j])
            assert _stats(s, tok, i)["visits"] == 0
        finally:
            conn.rollback()
            conn.close()
        st = _wait_visits(s, tok, i, made[i])
        assert st["visits"] == made[i], "visits %d after %d redirects " \
            "with the row locked" % (st["visits"], made[i])
        # Nothing comes late or twice: more flush windows change nothing.
        time.sleep(2.5)
        assert _stats(s, tok, i)["visits"] == made[i]
        assert _stats(s, tok, j)["visits"] == made[j]
        log = s.shortd_log()
        assert "their rows are locked by another session" in log, log[-3000:]

        # More links than one UPDATE takes (32), the last in id order
        # locked: the flush's second UPDATE times out after its first
        # was applied; the whole transaction is rolled back, so the
        # retry that skips the locked row writes the others once.
        many = sorted(s.shorten(tok, "https://example.com/many/%d/%s" % (
            n, _rid())) for n in range(40))
        conn = s.lock_url(many[-1])
        try:
            for k in many:
                r = s.http("GET", "/" + k, timeout=3)
                assert r.status_code == 301, "GET /%s: %s" % (k, _show(r))
            for k in many[:-1]:
                st = _wait_visits(s, tok, k, 1)
                assert st["visits"] == 1, st
            assert _stats(s, tok, many[-1])["visits"] == 0
        finally:
            conn.rollback()
            conn.close()
        assert _wait_visits(s, tok, many[-1], 1)["visits"] == 1
        time.sleep(2.5)
        assert [_stats(s, tok, k)["visits"] for k in many] == [1] * 40

        # The worker's session has the server's lock wait (50 s) back:
        # a PUT of a locked link waits past the flush's second without a
        # lock wait timeout, and is applied once the row is free.
        conn = s.lock_url(j)
        try:
            with ThreadPoolExecutor(1) as ex:
                put = ex.submit(s.http, "PUT", "/" + j,
                                body={"url": "https://example.com/moved"},
                                token=tok, timeout=30)
                time.sleep(2.5)
                assert not put.done(), "PUT answered while the row is " \
                    "locked: %s" % _show(put.result())
                conn.rollback()
                r = put.result()
        finally:
            conn.close()
        assert r.status_code == 200, "PUT after the lock: %s" % _show(r)
        assert "url update: Lock wait timeout" not in s.shortd_log(), \
            "the PUT waited with the flush's lock wait:\n%s" % (
                s.shortd_log()[-3000:])
    finally:
        s.restart_shortd()


# ------------------------------------------------------------------
# Reuse
# ------------------------------------------------------------------

def test_reuse(s):
    name, _, tok = s.new_user("reu")
    url = "https://example.com/reuse/" + _rid()
    first = _create(s, tok, {"value": url, "reuse": True}, 201)
    again = _create(s, tok, {"value": url, "reuse": True}, 200)
    assert again == first, (first, again)
    # Byte-exact: another spelling is another URL.
    other_url = _create(s, tok, {"value": url + "/", "reuse": True}, 201)
    assert other_url["id"] != first["id"]
    # Without reuse (or with false), a new link each time.
    assert s.shorten(tok, url) != first["id"]
    assert _create(s, tok, {"value": url, "reuse": False})["id"] != \
        first["id"]
    # The oldest of several is the one reused.
    assert _create(s, tok, {"value": url, "reuse": True}, 200) == first
    # Per user.
    tok2 = _user(s, "reo")
    theirs = _create(s, tok2, {"value": url, "reuse": True}, 201)
    assert theirs["id"] != first["id"]
    # Links with limits are not reused, nor expired ones; and reuse does
    # not combine with an id or limits.
    lim_url = "https://example.com/reuse-limited/" + _rid()
    _create(s, tok, {"value": lim_url, "max_visits": 9})
    fresh = _create(s, tok, {"value": lim_url, "reuse": True}, 201)
    assert fresh["max_visits"] is None, fresh
    for extra in ({"id": "reuse-" + _rid()}, {"max_visits": 2},
                  {"expires_in": 60}):
        body = dict(extra, value=url, reuse=True)
        _expect(s.http("POST", "/", body=body, token=tok), 400,
                "POST %s" % json.dumps(body), "error")
    for bad in ("yes", 1, None):
        _expect(s.http("POST", "/", body={"value": url, "reuse": bad},
                       token=tok), 400, "reuse %r" % (bad,), "error")
    # The lookup is by index (user, value_hash), never a scan.
    plan = s.sql("EXPLAIN SELECT id FROM urls WHERE `user` = %s AND "
                 "value_hash = UNHEX(SHA2(%s, 256)) AND value = %s",
                 (name, url, url))
    assert any(row[5] == "idx_user_value" for row in plan), plan
    h = s.sql("SELECT HEX(value_hash) FROM urls WHERE id = %s",
              (first["id"],))[0][0]
    assert h.lower() == hashlib.sha256(url.encode()).hexdigest()


# ------------------------------------------------------------------
# QR codes
# ------------------------------------------------------------------

def _decode_qr(svg):
    """Rasterise an SVG (rsvg-convert) and scan it (zbarimg) -> text."""
    d = tempfile.mkdtemp(prefix="qr-")
    try:
        src, png = os.path.join(d, "qr.svg"), os.path.join(d, "qr.png")
        with open(src, "wb") as f:
            f.write(svg)
        subprocess.run(["rsvg-convert", "-o", png, src], check=True,
                       timeout=60)
        r = subprocess.run(["zbarimg", "--raw", "-q", png],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60)
        assert r.returncode == 0, "zbarimg found no code (exit %d)" % \
            r.returncode
        return r.stdout.decode().strip()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_qr(s):
    tok = _user(s, "qrc")
    i = s.shorten(tok, "https://example.com/qr-target")
    r = s.http("GET", "/%s/qr" % i)          # public: no token
    assert r.status_code == 200, _show(r)
    assert r.headers.get("Content-Type") == "image/svg+xml", r.headers
    assert r.content.startswith(b"<?xml") and b"<svg" in r.content
    assert _decode_qr(r.content) == "%s/%s" % (s.url, i)
    etag = r.headers.get("ETag")
    assert etag and etag.startswith('"'), r.headers
    cc = r.headers.get("Cache-Control", "")
    assert "public" in cc and "max-age=86400" in cc, cc
    assert r.headers.get("Vary") == "Host", r.headers
    # Revalidation.
    r2 = s.http("GET", "/%s/qr" % i, headers={"If-None-Match": etag})
    assert r2.status_code == 304 and r2.content == b"", _show(r2)
    assert r2.headers.get("ETag") == etag
    r2 = s.http("GET", "/%s/qr" % i, headers={"If-None-Match": '"other"'})
    assert r2.status_code == 200 and r2.content == r.content
    r2 = s.http("HEAD", "/%s/qr" % i)
    assert r2.status_code == 200 and r2.content == b"" and \
        r2.headers.get("ETag") == etag, _show(r2)
    # Another Host is another short URL, so another drawing and tag.
    r2 = s.http("GET", "/%s/qr" % i, headers={"Host": "sho.example"})
    assert r2.headers.get("ETag") != etag
    assert _decode_qr(r2.content) == "http://sho.example/" + i
    # Errors stay JSON.
    _expect(s.http("GET", "/nope%s/qr" % _rid()), 404, "QR of an unknown id",
            "not found")
    r2 = s.http("POST", "/%s/qr" % i, token=tok)
    _expect(r2, 405, "POST /:id/qr")


def test_public_url(s):
    """With public_url, short_url and the QR code use it, and even a
    classic create gets short_url."""
    tok = _user(s, "pub")
    try:
        s.restart_shortd({"public_url": "https://sho.example/s/"})
        r = s.http("POST", "/", body={"value": "https://example.com/p"},
                   token=tok)
        body = _expect(r, 201, "classic POST with public_url")
        i = body["id"]
        assert body == {"id": i, "short_url": "https://sho.example/s/" + i,
                        "expires_at": None, "max_visits": None}, body
        r = s.http("GET", "/%s/qr" % i, headers={"Host": "other.example"})
        assert r.status_code == 200 and "Vary" not in r.headers, _show(r)
        assert _decode_qr(r.content) == "https://sho.example/s/" + i
        # A bad public_url is refused by shortd -t.
        for bad in ("ftp://x", "https://", "https://a b", "https://x/?q",
                    "sho.example"):
            p = s.shortd_check({"public_url": bad})
            assert p.returncode != 0 and "public_url" in p.stderr, \
                (bad, p.returncode, p.stderr)
    finally:
        s.restart_shortd({})


# ------------------------------------------------------------------
# The schema: what the contract says of it, and the upgrades to it
# ------------------------------------------------------------------

# The version this build of shortd needs (daemon/daemon.h).
with open(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "daemon", "daemon.h")) as _f:
    SCHEMA_VERSION = int(re.search(r"#define SHORTD_SCHEMA_VERSION\s+(\d+)",
                                   _f.read()).group(1))

# sql/schema.sql as shortd 0.1 shipped it (schema version 1).
SCHEMA_V1 = """
CREATE TABLE shortd_schema (version INT NOT NULL PRIMARY KEY)
    ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO shortd_schema (version) VALUES (1);
CREATE TABLE users (
    username VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    password VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    pw_changed BIGINT NOT NULL, created BIGINT NOT NULL,
    PRIMARY KEY (username)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE urls (
    id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    owner VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    value VARCHAR(2048) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    created_us BIGINT NOT NULL, updated_us BIGINT NOT NULL,
    PRIMARY KEY (id), KEY idx_owner_created (owner, created_us, id),
    CONSTRAINT fk_urls_owner FOREIGN KEY (owner)
        REFERENCES users (username) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
"""

# A database as sql/schema.sql left it at schema version 2, before
# urls.owner became urls.user (with its indexes and foreign key).
SCHEMA_V2 = """
CREATE TABLE shortd_schema (version INT NOT NULL PRIMARY KEY)
    ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO shortd_schema (version) VALUES (1), (2);
CREATE TABLE users (
    username VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    password VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    pw_changed BIGINT NOT NULL, created BIGINT NOT NULL,
    PRIMARY KEY (username)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE urls (
    id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    owner VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    value VARCHAR(2048) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    created_us BIGINT NOT NULL, updated_us BIGINT NOT NULL,
    value_hash BINARY(32) NULL, visits BIGINT NOT NULL DEFAULT 0,
    last_visit_us BIGINT NULL, expires_us BIGINT NULL,
    max_visits BIGINT NULL,
    PRIMARY KEY (id), KEY idx_owner_created (owner, created_us, id),
    KEY idx_owner_value (owner, value_hash),
    CONSTRAINT fk_urls_owner FOREIGN KEY (owner)
        REFERENCES users (username) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
"""

# The same at version 3: owner renamed to `user`, the indexes and the
# foreign key with it.
SCHEMA_V3 = SCHEMA_V2.replace("owner", "`user`").replace(
    "idx_`user`_created", "idx_user_created").replace(
    "idx_`user`_value", "idx_user_value").replace(
    "fk_urls_`user`", "fk_urls_user").replace(
    "VALUES (1), (2)", "VALUES (1), (2), (3)")


def _apply_schema(s, db):
    schema = os.path.join(os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))), "sql", "schema.sql")
    with open(schema, "rb") as f:
        r = subprocess.run(["mariadb", "--no-defaults", "--socket=" +
                            s.db_sock, "-u", "root", db], stdin=f,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=120)
    assert r.returncode == 0, "applying schema.sql to %s: %s" % (
        db, r.stdout.decode(errors="replace"))


def _columns(s, db):
    return [tuple(x) for x in s.sql(
        "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, "
        "COALESCE(COLUMN_DEFAULT, ''), COALESCE(COLLATION_NAME, '') "
        "FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = 'urls' "
        "ORDER BY ORDINAL_POSITION", (db,))]


def _indexes(s, db):
    return sorted(set(tuple(x) for x in s.sql(
        "SELECT INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME FROM "
        "information_schema.STATISTICS WHERE TABLE_SCHEMA = %s AND "
        "TABLE_NAME = 'urls'", (db,))))


def _foreign_keys(s, db):
    """(name, column, referenced table, referenced column, ON DELETE,
    ON UPDATE) of each foreign key of urls."""
    return sorted(tuple(x) for x in s.sql(
        "SELECT rc.CONSTRAINT_NAME, k.COLUMN_NAME, "
        "k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME, "
        "rc.DELETE_RULE, rc.UPDATE_RULE "
        "FROM information_schema.REFERENTIAL_CONSTRAINTS rc "
        "JOIN information_schema.KEY_COLUMN_USAGE k "
        "ON k.CONSTRAINT_SCHEMA = rc.CONSTRAINT_SCHEMA "
        "AND k.CONSTRAINT_NAME = rc.CONSTRAINT_NAME "
        "AND k.TABLE_NAME = rc.TABLE_NAME "
        "WHERE rc.CONSTRAINT_SCHEMA = %s AND rc.TABLE_NAME = 'urls'",
        (db,)))


def _assert_contract(s, db):
    """The contract's "Storage": InnoDB and utf8mb4, short ids
    ascii_bin, a urls.user foreign key to users ON DELETE CASCADE, an
    index listing a user's links in order, a schema version."""
    tables = {t: (e, c) for t, e, c in s.sql(
        "SELECT TABLE_NAME, ENGINE, TABLE_COLLATION FROM "
        "information_schema.TABLES WHERE TABLE_SCHEMA = %s", (db,))}
    # Tables of other features are checked by their own cases
    # (test_analytics.py: visits, visits_daily; test_keys.py:
    # api_keys, url_tags).
    assert {"shortd_schema", "urls", "users", "visits",
            "visits_daily"} <= set(tables), tables
    for t, (engine, coll) in tables.items():
        assert engine == "InnoDB" and coll.startswith("utf8mb4_"), \
            (db, t, engine, coll)
    cols = {c[0]: c for c in _columns(s, db)}
    assert "owner" not in cols, cols
    assert cols["id"][1:3] == ("varchar(64)", "NO") and \
        cols["id"][4] == "ascii_bin", cols["id"]
    assert cols["user"][1:3] == ("varchar(64)", "NO") and \
        cols["user"][4] == "ascii_bin", cols["user"]
    assert cols["value"][4] == "utf8mb4_bin", cols["value"]
    assert [f[:5] for f in _foreign_keys(s, db)
            if f[0].startswith("fk_urls")] == [
        ("fk_urls_user", "user", "users", "username", "CASCADE")], \
        _foreign_keys(s, db)
    idx = _indexes(s, db)
    assert [x[2] for x in idx if x[0] == "idx_user_created"] == \
        ["user", "created_us", "id"], idx
    assert [x[2] for x in idx if x[0] == "idx_user_value"] == \
        ["user", "value_hash"], idx
    assert not [x for x in idx if "owner" in x[0]], idx
    assert s.sql("SELECT MAX(version) FROM %s.shortd_schema" %
                 db)[0][0] == SCHEMA_VERSION


def test_schema_contract(s):
    # The suite's database: sql/schema.sql applied to an empty one.
    _assert_contract(s, "shortd")


def _refused(s, db, *want):
    """shortd refuses to start on db, and its log says each of want."""
    before = len(s.shortd_log())
    # It may have bound its sockets before the check, so a start can
    # look ready for a moment: wait for the exit itself.
    try:
        s.restart_shortd({"db_name": db})
    except Exception:
        pass
    rc = s.wait_shortd(30)
    assert rc is not None and rc != 0, \
        "shortd runs on %s (exit %r)" % (db, rc)
    log = s.shortd_log()[before:]
    for w in want:
        assert w in log, (w, log[-2000:])


def _old_and_new(s, prefix, schema):
    """Two new databases: one filled with schema (an old version), one
    empty -> (old, new, root connection)."""
    old = prefix + "old_" + _rid(6).lower()
    new = prefix + "new_" + _rid(6).lower()
    conn = s.db_connect(database=None, client_flag=1 << 16)  # MULTI_STATEMENTS
    with conn.cursor() as c:
        for db in (old, new):
            c.execute("CREATE DATABASE %s CHARACTER SET utf8mb4" % db)
            c.execute("GRANT ALL ON %s.* TO 'shortd'@'localhost'" % db)
        c.execute("USE " + old)
        c.execute(schema)
        while c.nextset():
            pass
    return old, new, conn


def _upgrade_twice(s, old, new):
    """Apply sql/schema.sql twice to old and to new (idempotent): both
    end up the same, as the contract says."""
    for db in (old, old, new, new):
        _apply_schema(s, db)
    assert _columns(s, old) == _columns(s, new), (
        _columns(s, old), _columns(s, new))
    assert _indexes(s, old) == _indexes(s, new)
    assert _foreign_keys(s, old) == _foreign_keys(s, new)
    _assert_contract(s, old)
    _assert_contract(s, new)


def _drop(s, conn, dbs):
    try:
        s.restart_shortd({})
    finally:
        with conn.cursor() as c:
            for db in dbs:
                c.execute("DROP DATABASE IF EXISTS " + db)
        conn.close()


def test_schema_upgrade_from_v1(s):
    old, new, conn = _old_and_new(s, "shortd_v1_", SCHEMA_V1)
    try:
        with conn.cursor() as c:
            c.execute("INSERT INTO users VALUES ('old', 'x', 1, 1), "
                      "('other', 'x', 1, 1)")
            c.execute("INSERT INTO urls VALUES ('oldlink', 'old', "
                      "'https://example.com/\u00e9t\u00e9', 5, 5), "
                      "('otherlink', 'other', 'https://example.com/o', 6, 6)")
        # shortd refuses the version 1 database and says what to do.
        _refused(s, old, "schema version 1", "needs %d" % SCHEMA_VERSION,
                 "apply sql/schema.sql")
        # Straight to the latest version, like a new install.
        _upgrade_twice(s, old, new)
        row = s.sql("SELECT `user`, value, created_us, updated_us, "
                    "HEX(value_hash), visits, expires_us, max_visits "
                    "FROM %s.urls WHERE id = 'oldlink'" % old)[0]
        assert row[:4] == ("old", "https://example.com/\u00e9t\u00e9", 5,
                           5) and row[4].lower() == hashlib.sha256(
            "https://example.com/\u00e9t\u00e9".encode()).hexdigest() and \
            row[5:] == (0, None, None), row
        # shortd runs on the upgraded database: the old link resolves
        # and is counted (written when shortd stops).
        s.restart_shortd({"db_name": old})
        r = s.http("GET", "/oldlink")
        assert r.status_code == 301 and r.json() == {
            "value": "https://example.com/\u00e9t\u00e9"}, _show(r)
        s.restart_shortd({})
        assert s.sql("SELECT visits FROM %s.urls WHERE id = 'oldlink'" %
                     old)[0][0] == 1
        # The re-made foreign key cascades: a user's links go with them.
        s.sql("DELETE FROM %s.users WHERE username = 'old'" % old)
        assert s.sql("SELECT id FROM %s.urls ORDER BY id" % old) == \
            (("otherlink",),)
    finally:
        _drop(s, conn, (old, new))


def test_schema_upgrade_from_v2(s):
    old, new, conn = _old_and_new(s, "shortd_v2_", SCHEMA_V2)
    now_us = int(time.time() * 1e6)
    ann = [("ann-a", "https://example.com/a", None, None, 0),
           ("ann-b", "https://example.com/b\u00e9", now_us + 3600 * 10**6,
            None, 2),
           ("ann-c", "https://example.com/c", None, 50, 7)]
    try:
        with conn.cursor() as c:
            c.execute("INSERT INTO users VALUES ('ann', 'x', 1, 1), "
                      "('bob', 'x', 1, 1)")
            for k, (i, v, exp, maxv, visits) in enumerate(ann):
                c.execute("INSERT INTO urls (id, owner, value, value_hash, "
                          "created_us, updated_us, visits, last_visit_us, "
                          "expires_us, max_visits) VALUES (%s, 'ann', %s, "
                          "UNHEX(SHA2(%s, 256)), %s, %s, %s, %s, %s, %s)",
                          (i, v, v, 1000 + k, 2000 + k, visits,
                           3000 + k if visits else None, exp, maxv))
            c.execute("INSERT INTO urls (id, owner, value, value_hash, "
                      "created_us, updated_us) VALUES ('bob-a', 'bob', "
                      "'https://example.com/bob', NULL, 10, 10)")
        rows = "SELECT id, {}, value, HEX(value_hash), created_us, " \
            "updated_us, visits, last_visit_us, expires_us, max_visits " \
            "FROM %s.urls ORDER BY id" % old
        before = s.sql(rows.format("owner"))
        _refused(s, old, "schema version 2", "needs %d" % SCHEMA_VERSION,
                 "apply sql/schema.sql")
        _upgrade_twice(s, old, new)
        after = s.sql(rows.format("`user`"))
        # Every row as it was, but bob's link now has its hash.
        want = tuple(r if r[3] is not None else r[:3] + (
            hashlib.sha256(r[2].encode()).hexdigest().upper(),) + r[4:]
            for r in before)
        assert after == want, (before, after)
        # shortd on the upgraded database: ann's links newest first a
        # page at a time, a redirect, reuse, a create.
        s.restart_shortd({"db_name": old})
        tok = jwt.encode({"sub": "ann", "iat": int(time.time()),
                          "exp": int(time.time()) + 3600},
                         s.jwt_secret, algorithm="HS256")
        page = _expect(s.http("GET", "/?limit=2", token=tok), 200, "list")
        assert [x["id"] for x in page["items"]] == ["ann-c", "ann-b"], page
        page = _expect(s.http("GET", "/?limit=2&after=" + page["next"],
                              token=tok), 200, "list next")
        assert [x["id"] for x in page["items"]] == ["ann-a"] and \
            page["next"] is None, page
        r = s.http("GET", "/bob-a")
        assert r.status_code == 301 and r.json() == {
            "value": "https://example.com/bob"}, _show(r)
        got = _create(s, tok, {"value": "https://example.com/a",
                               "reuse": True}, 200, "reuse")
        assert got["id"] == "ann-a", got
        got = _create(s, tok, {"value": "https://example.com/new"})
        assert s.sql("SELECT `user` FROM %s.urls WHERE id = %%s" % old,
                     (got["id"],)) == (("ann",),)
        s.restart_shortd({})
        # The foreign key still cascades: ann's links go with her.
        s.sql("DELETE FROM %s.users WHERE username = 'ann'" % old)
        assert s.sql("SELECT id FROM %s.urls ORDER BY id" % old) == \
            (("bob-a",),)
        # A database newer than shortd is refused with its own message.
        s.sql("INSERT INTO %%s.shortd_schema (version) VALUES (%d)" %
              (SCHEMA_VERSION + 1) % old)
        _refused(s, old, "schema version %d is newer than shortd's %d" % (
            SCHEMA_VERSION + 1, SCHEMA_VERSION), "upgrade shortd")
    finally:
        _drop(s, conn, (old, new))


# ------------------------------------------------------------------
# The OpenAPI document and the check of every response against it
# ------------------------------------------------------------------

def test_openapi_check_is_on(s):
    """Every s.http() response is checked (regress/openapi_check.py);
    this proves the check is there and can fail."""
    assert s.openapi is not None, "responses are not being checked"
    c = s.openapi
    j = "application/json"
    good = [("GET", "/", 200, j, b'{"items":[],"next":null}'),
            ("POST", "/", 201, j, b'{"id":"abcdefg"}'),
            ("GET", "/abc/stats", 200, j, json.dumps({
                "id": "abc", "value": "https://e.example/", "visits": 0,
                "created_at": "2024-01-01T00:00:00Z",
                "updated_at": "2024-01-01T00:00:00.5Z",
                "last_visit_at": None, "expires_at": None,
                "max_visits": None, "state": "active"}).encode()),
            ("GET", "/abc", 301, j, b'{"value":"https://e.example/"}'),
            ("PATCH", "/abc", 405, j,
             b'{"detail":"method not allowed","message":"no"}'),
            ("GET", "/a/b/c", 404, j, b'{"detail":"not found","message":"x"}'),
            ("GET", "/abc/qr", 200, "image/svg+xml", b"<svg/>"),
            ("DELETE", "/abc", 204, "", b""),
            ("HEAD", "/abc", 301, j, b"")]
    for args in good:
        c.check(*args)
    bad = [("POST", "/", 201, j, b'{"id":"abcdefg","extra":1}'),
           ("POST", "/", 201, j, b'{}'),
           ("GET", "/", 200, j, b'{"items":[{"id":"a"}],"next":null}'),
           ("GET", "/abc/stats", 200, j, json.dumps({
               "id": "abc", "value": "https://e.example/", "visits": 0,
               "created_at": "yesterday", "updated_at": None,
               "last_visit_at": None, "expires_at": None,
               "max_visits": None, "state": "active"}).encode()),
           ("GET", "/abc", 301, "text/html", b"<html>"),
           ("GET", "/abc", 404, j, b'{"detail":"not found"}'),
           ("GET", "/abc", 404, j, b'not json'),
           ("GET", "/abc", 200, j, b'{"value":"x"}'),
           ("GET", "/a/b/c", 200, j, b'{}'),
           ("DELETE", "/abc", 204, "", b"x"),
           ("HEAD", "/", 200, j, b"{}")]
    for args in bad:
        try:
            c.check(*args)
        except AssertionError:
            continue
        raise AssertionError("the OpenAPI check let %r through" % (args,))
