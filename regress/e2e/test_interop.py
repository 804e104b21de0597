"""
Interoperability with standard libraries (CONTRACT.md section 2): tokens
are RFC 7519 HS256 JWTs that PyJWT reads and writes, stored passwords are
argon2id PHC strings that argon2-cffi verifies.
"""

import base64
import hashlib
import hmac
import json
import time

import argon2
import jwt


def _show(r):
    return "%d %r" % (r.status_code, r.content[:300])


def _b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _unb64(t):
    return base64.urlsafe_b64decode(t + "=" * (-len(t) % 4))


_cache = {}


def _user(s):
    key = id(s)
    if key not in _cache:
        u = s.unique("iop")
        pw = "interop-" + u
        s.register(u, pw)
        _cache[key] = (u, pw)
    return _cache[key]


def _post_link(s, tok, url):
    return s.http("POST", "/", body={"value": url}, token=tok)


def test_login_token_verifies_with_pyjwt(s):
    u, pw = _user(s)
    t0 = int(time.time())
    r = s.http("POST", "/users/login", body={"username": u, "password": pw})
    assert r.status_code == 200, "login: %s" % _show(r)
    tok = r.json()["token"]
    assert "=" not in tok, "token has base64 padding: %r" % tok
    header = jwt.get_unverified_header(tok)
    assert header.get("alg") == "HS256", "header %r" % header
    # The header and payload are plain base64url of JSON objects.
    h, p, sig = tok.split(".")
    assert isinstance(json.loads(_unb64(h)), dict)
    assert isinstance(json.loads(_unb64(p)), dict)
    assert len(_unb64(sig)) == 32, "HS256 signature is not 32 bytes"
    claims = jwt.decode(tok, s.jwt_secret, algorithms=["HS256"])
    assert claims.get("sub") == u, "sub %r, want %r" % (claims.get("sub"), u)
    iat, exp = claims.get("iat"), claims.get("exp")
    assert isinstance(iat, int) and isinstance(exp, int), \
        "iat/exp not integers: %r" % claims
    assert t0 - 60 <= iat <= time.time() + 60, \
        "iat %d far from now %d" % (iat, t0)
    assert exp == iat + 3600, "exp %d != iat + 3600 (%d)" % (exp, iat)
    assert r.json()["expires_in"] == exp - iat
    # PyJWT with another secret refuses it: it is really signed.
    try:
        jwt.decode(tok, b"another secret of enough length!!",
                   algorithms=["HS256"])
    except jwt.InvalidSignatureError:
        pass
    else:
        raise AssertionError("token verifies with a wrong secret")


def test_pyjwt_token_accepted(s):
    u, _ = _user(s)
    now = int(time.time())
    tok = jwt.encode({"sub": u, "iat": now, "exp": now + 600},
                     s.jwt_secret, algorithm="HS256")
    if isinstance(tok, bytes):
        tok = tok.decode()
    url = "https://example.com/pyjwt/" + u
    r = _post_link(s, tok, url)
    assert r.status_code == 201, "POST / with a PyJWT token: %s" % _show(r)
    i = r.json()["id"]
    # The link belongs to sub: the login token lists it.
    login = s.login(u, "interop-" + u)
    r = s.http("GET", "/", token=login)
    assert r.status_code == 200, _show(r)
    assert {"id": i, "value": url} in r.json()["items"], \
        "link made with a PyJWT token not listed for %s: %s" % (u, _show(r))
    r = s.http("DELETE", "/" + i, headers={"Authorization": "Bearer " + tok})
    assert r.status_code == 204, "DELETE with PyJWT Bearer: %s" % _show(r)


def test_pyjwt_token_variants_accepted(s):
    """Other encoders' choices: claim order, no typ, extra claims, spaces."""
    u, _ = _user(s)
    now = int(time.time())

    def sign(header_json, payload_json):
        h = _b64(header_json.encode())
        p = _b64(payload_json.encode())
        mac = hmac.new(s.jwt_secret, (h + "." + p).encode(),
                       hashlib.sha256).digest()
        return h + "." + p + "." + _b64(mac)

    variants = [
        ("no typ", sign('{"alg":"HS256"}',
                        '{"sub":"%s","iat":%d,"exp":%d}' % (u, now,
                                                           now + 600))),
        ("claims reordered, spaces",
         sign('{ "typ" : "JWT", "alg" : "HS256" }',
              '{ "exp" : %d , "sub" : "%s", "iat" : %d }' % (now + 600, u,
                                                           now))),
        ("extra claims", jwt.encode({"sub": u, "iat": now, "exp": now + 600,
                                     "jti": "abc", "aud": "x",
                                     "roles": ["a", {"b": 1}]},
                                    s.jwt_secret, algorithm="HS256")),
    ]
    for what, tok in variants:
        if isinstance(tok, bytes):
            tok = tok.decode()
        r = s.http("GET", "/", token=tok)
        assert r.status_code == 200, \
            "GET / with a token (%s): %s" % (what, _show(r))


def test_pyjwt_wrong_secret_refused(s):
    u, _ = _user(s)
    now = int(time.time())
    for key in (b"wrong secret, long enough to be plausible",
                s.jwt_secret + b"x", s.jwt_secret[:-1]):
        tok = jwt.encode({"sub": u, "iat": now, "exp": now + 600}, key,
                         algorithm="HS256")
        r = _post_link(s, tok, "https://example.com/wrong-secret")
        assert r.status_code == 403, \
            "POST / with a token signed by another key: %s" % _show(r)
        assert r.json().get("detail") == "forbidden", _show(r)


def test_pyjwt_expired_refused(s):
    u, _ = _user(s)
    now = int(time.time())
    # Tokens issued before the password was set are revoked: date the
    # account back so that only expiry is tested here.
    s.sql("UPDATE users SET pw_changed = %s WHERE username = %s",
          (now - 86400, u))
    tok = jwt.encode({"sub": u, "iat": now - 7200, "exp": now - 600},
                     s.jwt_secret, algorithm="HS256")
    r = s.http("GET", "/", token=tok)
    assert r.status_code == 403, "expired PyJWT token: %s" % _show(r)
    # Within the default 30 s leeway a just-expired token still passes.
    tok = jwt.encode({"sub": u, "iat": now - 600, "exp": now - 5},
                     s.jwt_secret, algorithm="HS256")
    r = s.http("GET", "/", token=tok)
    assert r.status_code == 200, \
        "token expired 5 s ago (leeway 30 s): %s" % _show(r)


def test_stored_hash_verifies_with_argon2_cffi(s):
    u, pw = _user(s)
    rows = s.sql("SELECT password FROM users WHERE username=%s", (u,))
    assert len(rows) == 1, rows
    h = rows[0][0]
    if isinstance(h, (bytes, bytearray)):
        h = h.decode()
    ph = argon2.PasswordHasher()
    assert ph.verify(h, pw)
    try:
        ph.verify(h, pw + "x")
    except argon2.exceptions.VerifyMismatchError:
        pass
    else:
        raise AssertionError("argon2-cffi verifies a wrong password")
    # And the other way: a hash made by argon2-cffi with the daemon's
    # parameters logs in unchanged (no rehash needed).
    ours = argon2.PasswordHasher(time_cost=2, memory_cost=19456,
                                 parallelism=1).hash(pw)
    s.sql("UPDATE users SET password=%s WHERE username=%s", (ours, u))
    r = s.http("POST", "/users/login", body={"username": u, "password": pw})
    assert r.status_code == 200, \
        "login against an argon2-cffi hash: %s" % _show(r)
