"""
End-to-end cases for the shortener API (CONTRACT.md section 2,
"Shortener"): POST/GET/DELETE /, GET/HEAD/PUT/DELETE /:id through nginx.

Each test_*(s) gets the shared running stack.  Users share one
database, so names come from s.unique(); links are checked per user.
"""

import base64
import hashlib
import hmac
import json
import random
import re
import string
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import jwt
import requests

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
ID_RE = re.compile(r"^[0-9A-Za-z]{7}$")
BASE62 = string.digits + string.ascii_letters


def _show(r):
    return "%d %r" % (r.status_code, r.content[:300])


def _body(r, what):
    ct = r.headers.get("Content-Type", "")
    assert ct.split(";")[0].strip().lower() == "application/json", \
        "%s: Content-Type %r, want application/json (%s)" % (what, ct,
                                                           _show(r))
    try:
        return json.loads(r.content)
    except ValueError:
        raise AssertionError("%s: body is not JSON: %s" % (what, _show(r)))


def _expect(r, status, what, detail=None):
    assert r.status_code == status, "%s: want %d, got %s" % (what, status,
                                                            _show(r))
    body = _body(r, what)
    if detail is not None:
        assert isinstance(body, dict), "%s: body not an object: %s" % (
            what, _show(r))
        assert body.get("detail") == detail, \
            "%s: detail %r, want %r: %s" % (what, body.get("detail"),
                                            detail, _show(r))
        msg = body.get("message")
        assert isinstance(msg, str) and msg, \
            "%s: no human readable message: %s" % (what, _show(r))
    return body


def _location(r):
    """The raw bytes of the Location header (http.client reads latin-1)."""
    loc = r.headers.get("Location")
    return None if loc is None else loc.encode("latin-1")


def _b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _make_jwt(header, payload, key):
    """A token built by hand, so the header can say anything."""
    h = _b64(json.dumps(header, separators=(",", ":")).encode())
    p = _b64(json.dumps(payload, separators=(",", ":")).encode())
    sig = hmac.new(key, (h + "." + p).encode(), hashlib.sha256).digest()
    return h + "." + p + "." + _b64(sig)


class _User:
    def __init__(self, s, tag):
        self.name = s.unique(tag)
        self.pw = "pw-" + self.name
        s.register(self.name, self.pw)
        self.token = s.login(self.name, self.pw)


_cache = {}


def _users(s):
    """Two users, made once per stack (lazily, so --filter works)."""
    key = id(s)
    if key not in _cache:
        _cache[key] = (_User(s, "sha"), _User(s, "shb"))
    return _cache[key]


def _create(s, tok, url, what="POST /"):
    r = s.http("POST", "/", body={"value": url}, token=tok)
    body = _expect(r, 201, what)
    assert isinstance(body, dict) and set(body) == {"id"}, \
        "%s: body %s" % (what, _show(r))
    i = body["id"]
    assert isinstance(i, str) and ID_RE.match(i), \
        "%s: id %r is not 7 base62 characters" % (what, i)
    return i


def _resolve(s, i, url, what, status=301):
    r = s.http("GET", "/" + i)
    body = _expect(r, status, what)
    assert body == {"value": url}, "%s: body %s, want value %r" % (
        what, _show(r), url)
    assert _location(r) == url.encode(), \
        "%s: Location %r, want %r" % (what, _location(r), url)
    return r


def _random_id():
    return "".join(random.choice(BASE62) for _ in range(7))


def _list_all(s, tok, limit=None):
    """Follow the cursor to the end; returns the items in order."""
    items, after, pages = [], None, 0
    while True:
        q = []
        if limit is not None:
            q.append("limit=%d" % limit)
        if after is not None:
            q.append("after=" + urllib.parse.quote(after, safe=""))
        path = "/" + ("?" + "&".join(q) if q else "")
        r = s.http("GET", path, token=tok)
        body = _expect(r, 200, "GET %s" % path)
        assert isinstance(body, dict) and set(body) == {"items", "next"}, \
            "GET %s: body keys %s" % (path, _show(r))
        page = body["items"]
        assert isinstance(page, list), "GET %s: items not a list" % path
        if limit is not None:
            assert len(page) <= limit, "GET %s: %d items > limit" % (
                path, len(page))
        items.extend(page)
        pages += 1
        assert pages < 10000, "GET / paging does not end"
        nxt = body["next"]
        if nxt is None:
            return items
        assert isinstance(nxt, str) and nxt, "GET %s: next %r" % (path, nxt)
        assert page, "GET %s: empty page with a next cursor" % path
        after = nxt


# ------------------------------------------------------------------
# Tokens: 403 before anything else
# ------------------------------------------------------------------

def _bad_tokens(s, user, other):
    now = int(time.time())
    good = user.token
    h, p, sig = good.split(".")
    mid = len(sig) // 2
    flipped = sig[:mid] + ("A" if sig[mid] != "A" else "B") + sig[mid + 1:]
    other_payload = _b64(json.dumps({"sub": other.name, "iat": now,
                                     "exp": now + 600}).encode())
    claims = {"sub": user.name, "iat": now, "exp": now + 600}
    none_hdr = _b64(b'{"alg":"none","typ":"JWT"}')
    none_body = _b64(json.dumps(claims).encode())
    return [
        ("missing", None),
        ("empty", ""),
        ("garbage", "garbage"),
        ("Bearer alone", "Bearer"),
        ("Bearer and space", "Bearer "),
        ("Bearer garbage", "Bearer garbage"),
        ("three dots", "a.b.c"),
        ("two parts", h + "." + p),
        ("four parts", good + ".x"),
        ("Basic auth", "Basic " + _b64(b"%s:%s" % (user.name.encode(),
                                                 user.pw.encode()))),
        ("tampered signature", h + "." + p + "." + flipped),
        ("tampered payload", h + "." + other_payload + "." + sig),
        ("empty signature", h + "." + p + "."),
        ("expired", jwt.encode({"sub": user.name, "iat": now - 7200,
                                "exp": now - 3600}, s.jwt_secret,
                               algorithm="HS256")),
        ("alg none", none_hdr + "." + none_body + "."),
        ("alg none with signature", none_hdr + "." + none_body + "." + sig),
        ("alg None", _make_jwt({"alg": "None", "typ": "JWT"}, claims,
                               s.jwt_secret)),
        ("alg HS512", jwt.encode(claims, s.jwt_secret, algorithm="HS512")),
        ("alg HS384", jwt.encode(claims, s.jwt_secret, algorithm="HS384")),
        ("wrong secret", jwt.encode(claims, b"not the secret " * 3,
                                    algorithm="HS256")),
        ("no exp", _make_jwt({"alg": "HS256", "typ": "JWT"},
                             {"sub": user.name, "iat": now}, s.jwt_secret)),
        ("no sub", _make_jwt({"alg": "HS256", "typ": "JWT"},
                             {"iat": now, "exp": now + 600}, s.jwt_secret)),
        ("very long", "x" * 6000),
        ("Bearer very long", "Bearer " + "a." * 3000 + "a"),
        ("non-ASCII", "\u00e9" * 10),
        ("token in quotes", '"%s"' % good),
        ("Bearer expired", "Bearer " + jwt.encode(
            {"sub": user.name, "iat": now - 7200, "exp": now - 3600},
            s.jwt_secret, algorithm="HS256")),
    ]


def test_token_checked_first(s):
    a, b = _users(s)
    url = "https://example.com/token-first/" + a.name
    mine = _create(s, a.token, url)
    unknown = _random_id()
    calls = [
        ("POST", "/", {"value": "https://example.com/new"}),
        ("POST", "/", {"value": "not a url"}),
        ("POST", "/", "{malformed"),
        ("GET", "/", None),
        ("GET", "/?limit=abc", None),
        ("DELETE", "/", None),
        ("PUT", "/" + mine, {"url": "https://example.com/hijack"}),
        ("PUT", "/" + mine, {"url": "not a url"}),
        ("PUT", "/" + mine, "{malformed"),
        ("PUT", "/" + unknown, {"url": "https://example.com/x"}),
        ("PUT", "/" + unknown, {"url": ""}),
        ("DELETE", "/" + mine, None),
        ("DELETE", "/" + unknown, None),
    ]
    for what, tok in _bad_tokens(s, a, b):
        for method, path, body in calls:
            r = s.http(method, path, body=body, token=tok)
            _expect(r, 403, "%s %s (body %r) with token %s (%r)" % (
                method, path, body, what, tok), "forbidden")
    # Nothing happened on the way.
    _resolve(s, mine, url, "GET own link after refused calls")
    items = _list_all(s, a.token)
    assert {"id": mine, "value": url} in items, \
        "link %s gone after refused calls" % mine


def test_token_raw_and_bearer(s):
    a, _ = _users(s)
    i1 = _create(s, a.token, "https://example.com/raw")
    r = s.http("POST", "/", body={"value": "https://example.com/bearer"},
               headers={"Authorization": "Bearer " + a.token})
    body = _expect(r, 201, "POST / with Bearer token")
    i2 = body["id"]
    r = s.http("GET", "/", headers={"Authorization": "Bearer " + a.token})
    _expect(r, 200, "GET / with Bearer token")
    r = s.http("PUT", "/" + i2, body={"url": "https://example.com/b2"},
               headers={"Authorization": "Bearer " + a.token})
    _expect(r, 200, "PUT /:id with Bearer token")
    r = s.http("DELETE", "/" + i1,
               headers={"Authorization": "Bearer " + a.token})
    assert r.status_code == 204, "DELETE /:id with Bearer: %s" % _show(r)
    r = s.http("DELETE", "/" + i2, token=a.token)
    assert r.status_code == 204, "DELETE /:id with raw token: %s" % _show(r)
    # The scheme is case-insensitive (RFC 7235).
    r = s.http("GET", "/", headers={"Authorization": "bearer " + a.token})
    _expect(r, 200, "GET / with 'bearer' in lower case")


def test_token_for_unknown_user(s):
    """A correctly signed token whose user does not exist: never a 5xx."""
    now = int(time.time())
    ghost = s.unique("ghost")
    tok = jwt.encode({"sub": ghost, "iat": now, "exp": now + 600},
                     s.jwt_secret, algorithm="HS256")
    r = s.http("POST", "/", body={"value": "https://example.com/ghost"},
               token=tok)
    assert r.status_code in (201, 403), \
        "POST / as a user that does not exist: %s" % _show(r)
    _body(r, "POST / as a user that does not exist")
    r = s.http("GET", "/", token=tok)
    assert r.status_code in (200, 403), \
        "GET / as a user that does not exist: %s" % _show(r)


# ------------------------------------------------------------------
# Create and resolve
# ------------------------------------------------------------------

def test_create_and_redirect(s):
    a, _ = _users(s)
    url = "https://example.com/create/" + a.name
    i = _create(s, a.token, url)
    r = _resolve(s, i, url, "GET /%s" % i)
    cc = r.headers.get("Cache-Control", "")
    assert "max-age=300" in cc.replace(" ", ""), \
        "GET /%s: Cache-Control %r, want max-age=300" % (i, cc)
    # A token is not needed, and does not hurt.
    r = s.http("GET", "/" + i, token=a.token)
    _expect(r, 301, "GET /:id with a token")
    r = s.http("GET", "/" + i, token="garbage")
    _expect(r, 301, "GET /:id with a garbage token")
    # HEAD: same status and Location, no body.
    r = s.http("HEAD", "/" + i)
    assert r.status_code == 301, "HEAD /%s: %s" % (i, _show(r))
    assert _location(r) == url.encode(), "HEAD Location %r" % _location(r)
    assert r.content == b"", "HEAD /%s has a body %r" % (i, r.content)
    # A query string on the short link does not change where it goes.
    r = s.http("GET", "/%s?utm_source=x&a=%%20" % i)
    _expect(r, 301, "GET /:id?query")
    assert _location(r) == url.encode(), \
        "GET /:id?query Location %r" % _location(r)


def test_create_form_encoded(s):
    a, _ = _users(s)
    url = "https://example.com/form?a=1&b=%C3%A9"
    r = s.http("POST", "/", body="value=" + urllib.parse.quote(url, safe=""),
               headers=FORM, token=a.token)
    body = _expect(r, 201, "form-encoded POST /")
    _resolve(s, body["id"], url, "GET form-created link")
    r = s.http("POST", "/", body={"value": "https://example.com/ct"},
               headers={"Content-Type": "text/plain"}, token=a.token)
    _expect(r, 201, "JSON POST / sent as text/plain")


def test_unknown_ids(s):
    for i in (_random_id(), "abc", "a" * 64, "a" * 200, "0000000"):
        r = s.http("GET", "/" + i)
        _expect(r, 404, "GET /%s" % i, "not found")
        r = s.http("HEAD", "/" + i)
        assert r.status_code == 404 and r.content == b"", \
            "HEAD /%s: %s" % (i, _show(r))
    for path in ("/%00abc", "/%ff%fe", "/..%2f..%2fetc%2fpasswd", "/a%20b",
                 "/abc%0d%0aX-Injected:%20yes", "/'%20OR%20'1'='1"):
        r = s.http("GET", path)
        assert r.status_code in (400, 404), "GET %s: %s" % (path, _show(r))
        assert "X-Injected" not in r.headers, "header injection via %s" % path
        _body(r, "GET %s" % path)


def test_ids_case_sensitive(s):
    a, _ = _users(s)
    for attempt in range(5):
        url = "https://example.com/case/%d/%s" % (attempt, a.name)
        i = _create(s, a.token, url)
        pos = [k for k, c in enumerate(i) if c.isalpha()]
        if pos:
            break
    k = pos[0]
    swapped = i[:k] + i[k].swapcase() + i[k + 1:]
    r = s.http("GET", "/" + swapped)
    if r.status_code == 301:
        assert _location(r) != url.encode(), \
            "GET /%s resolves to /%s's URL: ids are not case-sensitive" % (
                swapped, i)
    else:
        _expect(r, 404, "GET /%s (case-swapped %s)" % (swapped, i),
                "not found")
    r = s.http("PUT", "/" + swapped, body={"url": "https://example.com/x"},
               token=a.token)
    assert r.status_code in (403, 404), \
        "PUT case-swapped id: %s" % _show(r)
    _resolve(s, i, url, "original id after case-swapped PUT")


def test_invalid_urls(s):
    a, _ = _users(s)
    bad = [
        "example.com",
        "www.example.com/path",
        "ftp://example.com/",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "mailto:a@example.com",
        "data:text/html,hi",
        "",
        "http://",
        "https://",
        "http:///path",
        "//example.com/",
        "http:example.com",
        "http//example.com",
        "http://exa mple.com/",
        "http://example.com/a b",
        " http://example.com/",
        "http://example.com/ ",
        "http://example.com/\t",
        "http://example.com/\n",
        "http://example.com/\r\nX-Injected: yes",
        "http://example.com/\x00",
        "http://example.com/\x01",
        "http://example.com/\x7f",
        "http://[::1/",
        "http://example.com:abc/",
        "http://example.com/" + "a" * (2049 - len("http://example.com/")),
    ]
    for url in bad:
        r = s.http("POST", "/", body={"value": url}, token=a.token)
        _expect(r, 400, "POST / with URL %r" % url[:80], "error")
    values = [
        ("missing value", {}),
        ("other key", {"target": "https://example.com/"}),
        ("number", {"value": 123}),
        ("null", {"value": None}),
        ("true", {"value": True}),
        ("array", {"value": ["https://example.com/"]}),
        ("object", {"value": {"url": "https://example.com/"}}),
        ("duplicate key", '{"value":"https://example.com/a",'
         '"value":"https://example.com/b"}'),
        ("malformed JSON", '{"value": "https://example.com/'),
        ("array body", '["https://example.com/"]'),
        ("string body", '"https://example.com/"'),
        ("empty body", b""),
        ("null body", "null"),
        ("invalid UTF-8", b'{"value":"https://example.com/\xff"}'),
    ]
    for what, body in values:
        r = s.http("POST", "/", body=body, token=a.token)
        _expect(r, 400, "POST / with %s" % what, "error")
    r = s.http("POST", "/", token=a.token)
    _expect(r, 400, "POST / without a body", "error")


def test_url_limits_byte_exact(s):
    a, _ = _users(s)
    prefix = "http://example.com/"
    url = prefix + "".join(random.choice(BASE62)
                           for _ in range(2048 - len(prefix)))
    assert len(url) == 2048
    i = _create(s, a.token, url, "POST / with a 2048-byte URL")
    _resolve(s, i, url, "GET 2048-byte URL")
    # 2048 bytes counted as bytes, not characters.
    url2 = prefix + "\u00e9" * ((2048 - len(prefix)) // 2)
    assert len(url2.encode()) <= 2048
    i2 = _create(s, a.token, url2, "POST / with a 2047-byte unicode URL")
    _resolve(s, i2, url2, "GET unicode URL near the limit")
    url3 = url2 + "\u00e9"
    assert len(url3.encode()) > 2048
    r = s.http("POST", "/", body={"value": url3}, token=a.token)
    _expect(r, 400, "POST / with a %d-byte unicode URL" %
            len(url3.encode()), "error")


def test_urls_round_trip(s):
    a, _ = _users(s)
    urls = [
        "https://example.com/path?q=1&r=two#frag",
        "https://example.com/a%20b%2Fc?x=%E2%82%AC&y=%2541",
        "https://example.com/?",
        "https://example.com/#",
        "https://example.com",
        "http://[::1]:8080/x?y",
        "http://[2001:db8::1]/",
        "http://127.0.0.1:5003/",
        "http://localhost/",
        "http://localhost:1/",
        "HTTP://Example.COM/Path",
        "HtTpS://EXAMPLE.com/",
        "https://example.com/\u00fcn\u00efc\u00f6d\u00e9/\u8def\u5f84"
        "?q=\u00e9#\u00e9",
        "https://example.com/~user/!$&'()*+,;=:@/?a=/?#frag/?",
        "https://sub.domain.example.co.uk:443/a/b/../c/./d",
        "https://example.com/trailing/",
        "https://xn--bcher-kva.example/",
        "https://example.com/%41%42",
        "https://example.com/a?b=c&d=e&d=f",
        "https://example.com/a//b///c",
    ]
    ids = {}
    for url in urls:
        i = _create(s, a.token, url, "POST / %r" % url)
        ids[i] = url
    for i, url in ids.items():
        _resolve(s, i, url, "GET /%s for %r" % (i, url))
        r = s.http("HEAD", "/" + i)
        assert _location(r) == url.encode(), \
            "HEAD /%s Location %r, want %r" % (i, _location(r), url)
    items = _list_all(s, a.token)
    listed = {x["id"]: x["value"] for x in items}
    for i, url in ids.items():
        assert listed.get(i) == url, "GET / has %r for %s, want %r" % (
            listed.get(i), i, url)


def test_json_escapes_in_and_out(s):
    a, _ = _users(s)
    # Escapes in the request decode before validation and storage.
    raw = '{"value": "https:\\/\\/example.com\\/\\u00e9?x=\\u0041"}'
    r = s.http("POST", "/", body=raw, token=a.token)
    body = _expect(r, 201, "POST / with JSON escapes")
    _resolve(s, body["id"], "https://example.com/\u00e9?x=A",
             "GET link made with JSON escapes")
    # Characters JSON output must escape: refused or returned exactly.
    for url in ('https://example.com/"quoted"', "https://example.com/a\\b",
                "https://example.com/<script>"):
        r = s.http("POST", "/", body={"value": url}, token=a.token)
        if r.status_code == 400:
            _expect(r, 400, "POST / %r" % url, "error")
            continue
        body = _expect(r, 201, "POST / %r" % url)
        _resolve(s, body["id"], url, "GET link for %r" % url)
        items = _list_all(s, a.token)
        assert {"id": body["id"], "value": url} in items, \
            "GET / lacks %r exactly" % url


# ------------------------------------------------------------------
# PUT /:id and DELETE /:id
# ------------------------------------------------------------------

def test_update(s):
    a, _ = _users(s)
    i = _create(s, a.token, "https://example.com/before")
    new = "https://example.com/after?x=1#y"
    r = s.http("PUT", "/" + i, body={"url": new}, token=a.token)
    body = _expect(r, 200, "PUT /%s" % i)
    assert body == {"id": i, "value": new}, "PUT body %s" % _show(r)
    _resolve(s, i, new, "GET after PUT")
    new2 = "http://example.org/value-key"
    r = s.http("PUT", "/" + i, body={"value": new2}, token=a.token)
    body = _expect(r, 200, "PUT /%s with value key" % i)
    assert body == {"id": i, "value": new2}, "PUT body %s" % _show(r)
    _resolve(s, i, new2, "GET after PUT with value key")
    new3 = "https://example.net/form?q=%C3%A9"
    r = s.http("PUT", "/" + i, body="url=" + urllib.parse.quote(new3, safe=""),
               headers=FORM, token=a.token)
    body = _expect(r, 200, "form-encoded PUT /%s" % i)
    assert body == {"id": i, "value": new3}, "PUT body %s" % _show(r)
    _resolve(s, i, new3, "GET after form-encoded PUT")
    items = _list_all(s, a.token)
    assert {"id": i, "value": new3} in items, "GET / lacks the updated link"


def test_update_order_of_failures(s):
    a, b = _users(s)
    url = "https://example.com/owned-by-a"
    i = _create(s, a.token, url)
    unknown = _random_id()
    good = {"url": "https://example.com/changed"}
    bad = {"url": "not a url"}
    cases = [
        (a, unknown, good, 404, "not found", "unknown id"),
        (a, unknown, bad, 404, "not found", "unknown id, invalid URL"),
        (a, unknown, "{malformed", 404, "not found", "unknown id, bad body"),
        (b, i, good, 403, "forbidden", "other user's id"),
        (b, i, bad, 403, "forbidden", "other user's id, invalid URL"),
        (b, i, "{malformed", 403, "forbidden", "other user's id, bad body"),
        (b, i, {}, 403, "forbidden", "other user's id, no url"),
        (a, i, bad, 400, "error", "own id, invalid URL"),
        (a, i, {"url": ""}, 400, "error", "own id, empty URL"),
        (a, i, {"url": 5}, 400, "error", "own id, numeric URL"),
        (a, i, {}, 400, "error", "own id, no url"),
        (a, i, "{malformed", 400, "error", "own id, malformed body"),
        (a, i, b"", 400, "error", "own id, empty body"),
    ]
    for user, target, body, status, detail, what in cases:
        r = s.http("PUT", "/" + target, body=body, token=user.token)
        _expect(r, status, "PUT /:id, %s" % what, detail)
    _resolve(s, i, url, "link after refused PUTs")


def test_delete(s):
    a, b = _users(s)
    i = _create(s, a.token, "https://example.com/to-delete")
    keep = _create(s, a.token, "https://example.com/to-keep")
    r = s.http("DELETE", "/" + i, token=b.token)
    _expect(r, 403, "DELETE other user's link", "forbidden")
    _resolve(s, i, "https://example.com/to-delete",
             "link after other user's DELETE")
    r = s.http("DELETE", "/" + i, token=a.token)
    assert r.status_code == 204, "DELETE /%s: %s" % (i, _show(r))
    assert r.content == b"", "DELETE 204 has a body %r" % r.content
    r = s.http("GET", "/" + i)
    _expect(r, 404, "GET after DELETE", "not found")
    r = s.http("DELETE", "/" + i, token=a.token)
    _expect(r, 404, "second DELETE", "not found")
    r = s.http("PUT", "/" + i, body={"url": "https://example.com/"},
               token=a.token)
    _expect(r, 404, "PUT after DELETE", "not found")
    r = s.http("DELETE", "/" + _random_id(), token=a.token)
    _expect(r, 404, "DELETE unknown id", "not found")
    _resolve(s, keep, "https://example.com/to-keep", "other link survives")
    items = _list_all(s, a.token)
    assert all(x["id"] != i for x in items), "deleted link still listed"


def test_changes_seen_by_every_worker(s):
    """An update or a delete is seen by the very next request, whichever
    worker answers it (no stale caches)."""
    a, _ = _users(s)
    i = _create(s, a.token, "https://example.com/v0")
    for n in range(1, 4):
        for _ in range(12):
            _resolve(s, i, "https://example.com/v%d" % (n - 1), "warm")
        url = "https://example.com/v%d" % n
        r = s.http("PUT", "/" + i, body={"url": url}, token=a.token)
        _expect(r, 200, "PUT /%s" % i)
        for k in range(12):
            _resolve(s, i, url, "GET #%d right after PUT v%d" % (k, n))
    r = s.http("DELETE", "/" + i, token=a.token)
    assert r.status_code == 204, _show(r)
    for k in range(12):
        r = s.http("GET", "/" + i)
        _expect(r, 404, "GET #%d right after DELETE" % k, "not found")


# ------------------------------------------------------------------
# GET / and DELETE /
# ------------------------------------------------------------------

def test_list_empty(s):
    c = _User(s, "empty")
    r = s.http("GET", "/", token=c.token)
    body = _expect(r, 200, "GET / of a user without links")
    assert body == {"items": [], "next": None}, \
        "empty list body %s" % _show(r)
    assert body.get("value") is None and b'"value"' not in r.content, \
        "empty list mentions value: %s" % _show(r)
    r = s.http("HEAD", "/", token=c.token)
    assert r.status_code == 200 and r.content == b"", \
        "HEAD / with a token: %s" % _show(r)
    r = s.http("HEAD", "/")
    assert r.status_code == 403 and r.content == b"", \
        "HEAD / without a token: %s" % _show(r)


def test_list_and_paging(s):
    c = _User(s, "lst")
    urls = ["https://example.com/list/%d" % k for k in range(5)]
    ids = [_create(s, c.token, u) for u in urls]
    r = s.http("GET", "/", token=c.token)
    body = _expect(r, 200, "GET /")
    want = [{"id": i, "value": u} for i, u in zip(ids, urls)][::-1]
    assert body == {"items": want, "next": None}, \
        "GET / want newest first %r, got %s" % (want, _show(r))
    assert _list_all(s, c.token, limit=2) == want, "limit=2 paging"
    assert _list_all(s, c.token, limit=1) == want, "limit=1 paging"
    assert _list_all(s, c.token, limit=5) == want, "limit=5 paging"
    assert _list_all(s, c.token, limit=1000) == want, "limit=1000 paging"
    r = s.http("GET", "/?limit=2", token=c.token)
    body = _expect(r, 200, "GET /?limit=2")
    assert body["items"] == want[:2] and isinstance(body["next"], str), \
        "GET /?limit=2: %s" % _show(r)
    for q in ("limit=0", "limit=1001", "limit=abc", "limit=-1", "limit=1.5",
              "limit=2x", "limit=99999999999999999999",
              "after=!!!", "after=%25%25%25", "after=%00",
              "limit=2&after=" + "~" * 300,
              "after=" + _b64(b"garbage"), "after=" + _b64(b"12x.abc")):
        r = s.http("GET", "/?" + q, token=c.token)
        _expect(r, 400, "GET /?%s" % q, "error")
    # Unknown query keys are ignored.
    r = s.http("GET", "/?foo=bar", token=c.token)
    body = _expect(r, 200, "GET /?foo=bar")
    assert body["items"] == want, _show(r)


def test_delete_all(s):
    d = _User(s, "dall")
    e = _User(s, "keep")
    mine = [_create(s, d.token, "https://example.com/d/%d" % k)
            for k in range(3)]
    theirs = [_create(s, e.token, "https://example.com/e/%d" % k)
              for k in range(2)]
    r = s.http("DELETE", "/", token=d.token)
    body = _expect(r, 404, "DELETE /")
    assert body.get("detail") == "not found" and body.get("deleted") == 3, \
        "DELETE / body %s, want detail not found, deleted 3" % _show(r)
    assert type(body["deleted"]) is int, _show(r)
    for i in mine:
        _expect(s.http("GET", "/" + i), 404, "GET after DELETE /",
                "not found")
    r = s.http("GET", "/", token=d.token)
    assert _expect(r, 200, "GET / after DELETE /") == \
        {"items": [], "next": None}, _show(r)
    for k, i in enumerate(theirs):
        _resolve(s, i, "https://example.com/e/%d" % k,
                 "other user's link after DELETE /")
    assert len(_list_all(s, e.token)) == 2, "other user's list changed"
    r = s.http("DELETE", "/", token=d.token)
    body = _expect(r, 404, "second DELETE /")
    assert body.get("detail") == "not found" and body.get("deleted") == 0, \
        "second DELETE / body %s" % _show(r)


def test_two_users_isolated(s):
    a, b = _users(s)
    ia = _create(s, a.token, "https://example.com/iso-a")
    ib = _create(s, b.token, "https://example.com/iso-b")
    la = {x["id"] for x in _list_all(s, a.token)}
    lb = {x["id"] for x in _list_all(s, b.token)}
    assert ia in la and ib not in la, "A's list: %r" % la
    assert ib in lb and ia not in lb, "B's list: %r" % lb
    assert not la & lb, "lists overlap: %r" % (la & lb)
    for me, other, theirs in ((a, b, ib), (b, a, ia)):
        r = s.http("PUT", "/" + theirs, body={"url": "https://evil.example/"},
                   token=me.token)
        _expect(r, 403, "PUT another user's link", "forbidden")
        r = s.http("DELETE", "/" + theirs, token=me.token)
        _expect(r, 403, "DELETE another user's link", "forbidden")
    _resolve(s, ia, "https://example.com/iso-a", "A's link intact")
    _resolve(s, ib, "https://example.com/iso-b", "B's link intact")


# ------------------------------------------------------------------
# Methods and paths
# ------------------------------------------------------------------

def test_methods_and_paths(s):
    a, _ = _users(s)
    i = _create(s, a.token, "https://example.com/methods")
    cases = [("PATCH", "/" + i, {"GET", "PUT", "DELETE"}),
             ("POST", "/" + i, {"GET", "PUT", "DELETE"}),
             ("PUT", "/", {"GET", "POST", "DELETE"}),
             ("PATCH", "/", {"GET", "POST", "DELETE"})]
    for method, path, must in cases:
        r = s.http(method, path, body={"url": "https://example.com/"},
                   token=a.token)
        assert r.status_code == 405, "%s %s: want 405, got %s" % (
            method, path, _show(r))
        allow = r.headers.get("Allow")
        assert allow, "%s %s: 405 without Allow" % (method, path)
        allowed = {x.strip().upper() for x in allow.split(",")}
        assert must <= allowed and method not in allowed, \
            "%s %s: Allow %r" % (method, path, allow)
        body = _body(r, "%s %s" % (method, path))
        assert "detail" in body and "message" in body, _show(r)
    for method in ("GET", "DELETE", "PUT"):
        for path in ("/%s/x" % i, "/a/b", "/%s/" % i):
            r = s.http(method, path, body={"url": "https://example.com/"},
                       token=a.token)
            _expect(r, 404, "%s %s" % (method, path))
    _resolve(s, i, "https://example.com/methods", "link after odd methods")


def test_body_too_large(s):
    a, _ = _users(s)
    big = json.dumps({"value": "https://example.com/" + "a" * (70 << 10)})
    r = s.http("POST", "/", body=big, token=a.token)
    _expect(r, 413, "POST / with a %d-byte body" % len(big))
    r = s.http("POST", "/", body=b"x" * (1 << 20), token=a.token)
    _expect(r, 413, "POST / with a 1 MiB body")
    i = _create(s, a.token, "https://example.com/after-413")
    _resolve(s, i, "https://example.com/after-413", "GET after 413")


def test_body_limit_in_shortd(s):
    """shortd's own limit, below nginx's: 413 with a JSON body too."""
    a, _ = _users(s)
    url = "https://example.com/" + "b" * 1500
    try:
        s.restart_shortd({"max_body": "1024"})
        for path, method in (("/", "POST"), ("/users", "POST"),
                             ("/users/login", "POST")):
            r = s.http(method, path, body={"value": url, "username": "x",
                                           "password": "y" * 1500},
                       token=a.token)
            _expect(r, 413, "%s %s with a 1.5 KiB body, max_body 1024" % (
                method, path))
        i = _create(s, a.token, "https://example.com/small",
                    "POST / with a small body, max_body 1024")
        _resolve(s, i, "https://example.com/small", "GET with max_body 1024")
    finally:
        s.restart_shortd({})
    i = _create(s, a.token, url, "POST / with a 1.5 KiB body, max_body "
                "back to default")
    _resolve(s, i, url, "GET after restoring max_body")


def test_chunked_bodies(s):
    """Bodies without Content-Length (chunked) are read like any other."""
    a, _ = _users(s)
    url = "https://example.com/chunked"

    def chunks(data, size):
        for k in range(0, len(data), size):
            yield data[k:k + size]

    body = json.dumps({"value": url}).encode()
    r = requests.post(_base(s) + "/", data=chunks(body, 5),
                      headers={"Authorization": a.token}, timeout=30,
                      allow_redirects=False)
    got = _expect(r, 201, "chunked POST /")
    _resolve(s, got["id"], url, "GET link made by a chunked POST")
    big = json.dumps({"value": "https://example.com/" + "c" * (80 << 10)})
    r = requests.post(_base(s) + "/", data=chunks(big.encode(), 4096),
                      headers={"Authorization": a.token}, timeout=30,
                      allow_redirects=False)
    _expect(r, 413, "chunked POST / of %d bytes" % len(big))


# ------------------------------------------------------------------
# Redirect options (restart shortd)
# ------------------------------------------------------------------

def test_redirect_options(s):
    a, _ = _users(s)
    url = "https://example.com/redirect-options?q=1"
    i = _create(s, a.token, url)
    try:
        for status in (302, 307, 308):
            s.restart_shortd({"redirect_status": str(status)})
            _resolve(s, i, url, "GET with redirect_status %d" % status,
                     status)
            r = s.http("HEAD", "/" + i)
            assert r.status_code == status and \
                _location(r) == url.encode() and r.content == b"", \
                "HEAD with redirect_status %d: %s %r" % (
                    status, _show(r), _location(r))
        s.restart_shortd({"legacy_redirect": "yes"})
        r = s.http("GET", "/" + i)
        body = _expect(r, 301, "GET with legacy_redirect")
        assert body == {"value": url}, "legacy body %s" % _show(r)
        assert "Location" not in r.headers, \
            "legacy_redirect sent Location %r" % r.headers.get("Location")
        r = s.http("GET", "/" + _random_id())
        _expect(r, 404, "unknown id with legacy_redirect", "not found")
    finally:
        s.restart_shortd({})
    _resolve(s, i, url, "GET after restoring the defaults")


# ------------------------------------------------------------------
# Concurrency
# ------------------------------------------------------------------

def _base(s):
    """The stack's "http://127.0.0.1:PORT" (s.base, or s.url)."""
    return getattr(s, "base", None) or s.url


def _session_pool(s, tok):
    """A per-thread requests.Session factory posting links for tok."""
    local = threading.local()

    def post(url):
        sess = getattr(local, "sess", None)
        if sess is None:
            sess = local.sess = requests.Session()
        r = sess.post(_base(s) + "/", data=json.dumps({"value": url}),
                      headers={"Authorization": tok}, timeout=60,
                      allow_redirects=False)
        assert r.status_code == 201, "parallel POST / %r: %s" % (url,
                                                                _show(r))
        return r.json()["id"]

    def get(i):
        sess = getattr(local, "sess", None)
        if sess is None:
            sess = local.sess = requests.Session()
        return sess.get(_base(s) + "/" + i, timeout=60,
                        allow_redirects=False)

    return post, get


def test_parallel_creates(s):
    c = _User(s, "par")
    post, get = _session_pool(s, c.token)
    urls = ["https://example.com/par/%d" % k for k in range(64)]
    with ThreadPoolExecutor(16) as ex:
        ids = list(ex.map(post, urls))
    assert len(set(ids)) == 64, "64 creates gave %d ids" % len(set(ids))
    assert all(ID_RE.match(i) for i in ids), ids
    with ThreadPoolExecutor(16) as ex:
        rs = list(ex.map(get, ids))
    for i, url, r in zip(ids, urls, rs):
        assert r.status_code == 301 and _location(r) == url.encode(), \
            "GET /%s want %r: %s %r" % (i, url, _show(r), _location(r))
    listed = {x["id"]: x["value"] for x in _list_all(s, c.token)}
    assert listed == dict(zip(ids, urls)), "GET / after parallel creates"


def test_many_links_paging(s):
    c = _User(s, "many")
    post, _ = _session_pool(s, c.token)
    before = [_create(s, c.token, "https://example.com/seq/a%d" % k)
              for k in range(3)]
    t0 = time.monotonic()
    with ThreadPoolExecutor(8) as ex:
        bulk = list(ex.map(post, ["https://example.com/bulk/%d" % k
                                  for k in range(2500)]))
    took = time.monotonic() - t0
    after = [_create(s, c.token, "https://example.com/seq/b%d" % k)
             for k in range(3)]
    assert took < 300, "2500 creates took %.0f s" % took
    assert len(set(bulk)) == 2500, "bulk ids not distinct"
    every = before + bulk + after
    want_values = {i: "https://example.com/seq/a%d" % k
                   for k, i in enumerate(before)}
    want_values.update({i: "https://example.com/bulk/%d" % k
                        for k, i in enumerate(bulk)})
    want_values.update({i: "https://example.com/seq/b%d" % k
                        for k, i in enumerate(after)})
    lists = {}
    for limit in (1000, None):
        items = _list_all(s, c.token, limit)
        ids = [x["id"] for x in items]
        what = "paging with limit=%s" % limit
        assert len(ids) == len(set(ids)), "%s repeats %d ids" % (
            what, len(ids) - len(set(ids)))
        assert set(ids) == set(every), "%s: %d missing, %d extra" % (
            what, len(set(every) - set(ids)), len(set(ids) - set(every)))
        for x in items:
            assert x["value"] == want_values[x["id"]], \
                "%s: %r" % (what, x)
        # Newest first: the sequential samples bracket the bulk.
        pos = {i: k for k, i in enumerate(ids)}
        seq = [pos[i] for i in after[::-1]] + [pos[i] for i in before[::-1]]
        assert seq == sorted(seq), "%s: sequential sample out of order" % what
        assert ids[:3] == after[::-1] and ids[-3:] == before[::-1], \
            "%s: newest/oldest not at the ends" % what
        lists[limit] = ids
    assert lists[1000] == lists[None], "limit=1000 and default disagree"
    r = s.http("DELETE", "/", token=c.token)
    body = _expect(r, 404, "DELETE / of 2506 links")
    assert body.get("deleted") == 2506, "DELETE / %s" % _show(r)
    assert _list_all(s, c.token) == [], "links left after DELETE /"


def test_parallel_mixed_operations(s):
    """Updates, deletes and redirects racing on the same links: every
    answer is one the contract allows, and the end state is coherent."""
    c = _User(s, "mix")
    ids = [_create(s, c.token, "https://example.com/mix/%d/0" % k)
           for k in range(6)]
    written = {i: {"https://example.com/mix/%d/0" % k}
               for k, i in enumerate(ids)}
    lock = threading.Lock()
    rnd = random.Random(1234)
    ops = []
    for n in range(240):
        k = rnd.randrange(len(ids))
        ops.append((rnd.choice("GGGPPD"), k, n))

    def run(op):
        kind, k, n = op
        i = ids[k]
        if kind == "G":
            r = s.http("GET", "/" + i)
            assert r.status_code in (301, 404), "GET race: %s" % _show(r)
            if r.status_code == 301:
                with lock:
                    ok = _location(r).decode() in written[i]
                assert ok, "GET race: %r never written" % _location(r)
        elif kind == "P":
            url = "https://example.com/mix/%d/%d" % (k, n)
            with lock:
                written[i].add(url)
            r = s.http("PUT", "/" + i, body={"url": url}, token=c.token)
            assert r.status_code in (200, 404), "PUT race: %s" % _show(r)
            if r.status_code == 200:
                assert r.json() == {"id": i, "value": url}, _show(r)
        else:
            r = s.http("DELETE", "/" + i, token=c.token)
            assert r.status_code in (204, 404), "DELETE race: %s" % _show(r)
        return i

    with ThreadPoolExecutor(16) as ex:
        list(ex.map(run, ops))
    listed = {x["id"]: x["value"] for x in _list_all(s, c.token)}
    for i in ids:
        r = s.http("GET", "/" + i)
        if i in listed:
            _resolve(s, i, listed[i], "GET after the race")
            assert listed[i] in written[i], "%s: %r" % (i, listed[i])
        else:
            _expect(r, 404, "GET of a link not listed after the race",
                    "not found")
