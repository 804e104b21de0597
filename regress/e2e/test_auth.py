"""
End-to-end cases for the auth API (CONTRACT.md section 2, "Auth"):
POST /users, PUT /users, POST /users/login through nginx.

Each test_*(s) gets the shared running stack; users share one database,
so every name comes from s.unique().  Hashing is full-strength argon2,
so the cases reuse a few users where that does not blur what they test.
"""

import json
import re
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import argon2

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
B64URL = re.compile(r"^[A-Za-z0-9_-]+$")
PHC = re.compile(r"^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$"
                 r"[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$")


def _show(r):
    return "%d %r" % (r.status_code, r.content[:300])


def _body(r, what):
    """The JSON body of r, asserting the Content-Type says so."""
    ct = r.headers.get("Content-Type", "")
    assert ct.split(";")[0].strip().lower() == "application/json", \
        "%s: Content-Type %r, want application/json (%s)" % (what, ct,
                                                           _show(r))
    try:
        return json.loads(r.content)
    except ValueError:
        raise AssertionError("%s: body is not JSON: %s" % (what, _show(r)))


def _expect(r, status, what, detail=None):
    """Assert the status; for errors also {"detail": detail, "message"}."""
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


def _post_users(s, body, headers=None):
    return s.http("POST", "/users", body=body, headers=headers)


def _login(s, body, headers=None):
    return s.http("POST", "/users/login", body=body, headers=headers)


def _stored_hash(s, user):
    rows = s.sql("SELECT password FROM users WHERE username=%s", (user,))
    assert len(rows) == 1, "user %r: %d rows in users" % (user, len(rows))
    h = rows[0][0]
    if isinstance(h, (bytes, bytearray)):
        h = h.decode()
    return h


def _phc_params(h):
    m = PHC.match(h)
    assert m, "stored hash is not an argon2id PHC string: %r" % h
    return tuple(int(x) for x in m.groups())


# One registered user for the cases that only need "some user"; made
# lazily so that running a single case (--filter) still works.
_shared = {}


def _user(s):
    key = id(s)
    if key not in _shared:
        u = s.unique("auth")
        pw = "pw-" + u
        s.register(u, pw)
        _shared[key] = (u, pw)
    return _shared[key]


# ------------------------------------------------------------------
# POST /users
# ------------------------------------------------------------------

def test_register_created(s):
    u = s.unique("reg")
    r = _post_users(s, {"username": u, "password": "secret"})
    body = _expect(r, 201, "POST /users")
    assert body == {"username": u}, "POST /users body %s" % _show(r)
    rows = s.sql("SELECT COUNT(*) FROM users WHERE username=%s", (u,))
    assert rows[0][0] == 1, "user %r not stored" % u


def test_register_duplicate(s):
    u, pw = _user(s)
    r = _post_users(s, {"username": u, "password": "other"})
    _expect(r, 409, "duplicate POST /users", "duplicate")
    # The original still logs in with its own password.
    r = _login(s, {"username": u, "password": pw})
    _expect(r, 200, "login after duplicate")
    r = _login(s, {"username": u, "password": "other"})
    _expect(r, 403, "login with the duplicate's password", "forbidden")


def test_register_malformed_bodies(s):
    u = s.unique("bad")
    cases = [
        ("truncated JSON", '{"username": "%s", "password": ' % u),
        ("not JSON", "username=%s password=x" % u),
        ("array body", json.dumps([u, "pw"])),
        ("array of object", json.dumps([{"username": u, "password": "pw"}])),
        ("string body", json.dumps("%s:pw" % u)),
        ("number body", "42"),
        ("null body", "null"),
        ("empty body", b""),
        ("whitespace body", "   \n"),
        ("trailing garbage", '{"username":"%s","password":"pw"} x' % u),
        ("two objects", '{"username":"%s","password":"pw"}{}' % u),
        ("single quotes", "{'username':'%s','password':'pw'}" % u),
        ("trailing comma", '{"username":"%s","password":"pw",}' % u),
        ("invalid UTF-8", b'{"username":"' + u.encode() +
         b'","password":"\xff\xfe"}'),
        ("NUL escape in username", '{"username":"%s\\u0000x",'
         '"password":"pw"}' % u),
        ("deeply nested array", "[" * 5000 + "]" * 5000),
        ("deeply nested username", '{"username":%s%s,"password":"pw"}' % (
            "[" * 5000, "]" * 5000)),
    ]
    for what, body in cases:
        r = _post_users(s, body)
        _expect(r, 400, "POST /users with %s" % what, "error")
    r = _post_users(s, None)
    _expect(r, 400, "POST /users without a body", "error")
    rows = s.sql("SELECT COUNT(*) FROM users WHERE username LIKE %s",
                 (u + "%",))
    assert rows[0][0] == 0, "a malformed POST /users created %r" % u


def test_register_missing_and_wrong_types(s):
    u = s.unique("typ")
    cases = [
        ("empty object", {}),
        ("missing username", {"password": "pw"}),
        ("missing password", {"username": u}),
        ("username number", {"username": 12345, "password": "pw"}),
        ("password number", {"username": u, "password": 12345}),
        ("username null", {"username": None, "password": "pw"}),
        ("password null", {"username": u, "password": None}),
        ("username object", {"username": {"a": u}, "password": "pw"}),
        ("password object", {"username": u, "password": {"a": "b"}}),
        ("username array", {"username": [u], "password": "pw"}),
        ("password true", {"username": u, "password": True}),
        ("duplicate username key",
         '{"username":"%s","username":"%sx","password":"pw"}' % (u, u)),
        ("wrong key case", {"Username": u, "Password": "pw"}),
    ]
    for what, body in cases:
        r = _post_users(s, body)
        _expect(r, 400, "POST /users with %s" % what, "error")
    rows = s.sql("SELECT COUNT(*) FROM users WHERE username LIKE %s",
                 (u + "%",))
    assert rows[0][0] == 0, "an invalid POST /users created %r" % u


def test_register_invalid_usernames(s):
    base = s.unique("inv")
    cases = [
        ("empty", ""),
        ("65 bytes", (base + "x" * 65)[:65]),
        ("space", base + " x"),
        ("leading space", " " + base),
        ("slash", base + "/x"),
        ("unicode", base + "\u00e9"),
        ("CJK", base + "\u540d"),
        ("quote", base + "a'b"),
        ("double quote", base + 'a"b'),
        ("semicolon", base + ";DROP TABLE users"),
        ("percent", base + "%"),
        ("plus", base + "+x"),
        ("colon", base + ":x"),
        ("tab", base + "\tx"),
        ("newline", base + "\nx"),
        ("backslash", base + "\\x"),
        ("asterisk", base + "*"),
    ]
    for what, name in cases:
        r = _post_users(s, {"username": name, "password": "pw"})
        _expect(r, 400, "POST /users with a username (%s) %r" % (what, name),
                "error")
    rows = s.sql("SELECT COUNT(*) FROM users WHERE username LIKE %s",
                 (base + "%",))
    assert rows[0][0] == 0, "an invalid username was stored"


def test_register_username_limits(s):
    u64 = (s.unique("l64") + "x" * 64)[:64]
    assert len(u64) == 64
    r = _post_users(s, {"username": u64, "password": "pw"})
    body = _expect(r, 201, "POST /users with a 64-byte username")
    assert body == {"username": u64}, _show(r)
    r = _login(s, {"username": u64, "password": "pw"})
    _expect(r, 200, "login with a 64-byte username")
    # Every character class the contract allows, in one name.
    odd = s.unique("c") + ".A-z_9@x"
    r = _post_users(s, {"username": odd, "password": "pw"})
    body = _expect(r, 201, "POST /users with username %r" % odd)
    assert body == {"username": odd}, _show(r)


def test_register_passwords(s):
    u = s.unique("pwd")
    r = _post_users(s, {"username": u, "password": ""})
    _expect(r, 400, "POST /users with an empty password", "error")
    r = _post_users(s, {"username": u, "password": "x" * 1025})
    _expect(r, 400, "POST /users with a 1025-byte password", "error")
    # 1025 bytes made of multi-byte characters: bytes count, not chars.
    r = _post_users(s, {"username": u, "password": "\u00e9" * 513})
    _expect(r, 400, "POST /users with a 1026-byte (513 char) password",
            "error")
    rows = s.sql("SELECT COUNT(*) FROM users WHERE username=%s", (u,))
    assert rows[0][0] == 0, "an invalid password created %r" % u
    pw = "y" * 1024
    r = _post_users(s, {"username": u, "password": pw})
    _expect(r, 201, "POST /users with a 1024-byte password")
    r = _login(s, {"username": u, "password": pw})
    _expect(r, 200, "login with a 1024-byte password")
    r = _login(s, {"username": u, "password": pw[:-1]})
    _expect(r, 403, "login with the 1024-byte password cut short",
            "forbidden")


def test_register_huge_password(s):
    u = s.unique("huge")
    body = json.dumps({"username": u, "password": "z" * (2 << 20)})
    r = _post_users(s, body)
    assert r.status_code in (400, 413), \
        "POST /users with a 2 MiB password: want 413 or 400, got %s" % \
        _show(r)
    _body(r, "POST /users with a 2 MiB password")
    rows = s.sql("SELECT COUNT(*) FROM users WHERE username=%s", (u,))
    assert rows[0][0] == 0, "a 2 MiB password created %r" % u
    # The service still works.
    r = _post_users(s, {"username": u, "password": "fine"})
    _expect(r, 201, "POST /users after the 2 MiB request")
    r = _login(s, {"username": u, "password": "fine"})
    _expect(r, 200, "login after the 2 MiB request")


def test_register_sql_metacharacters(s):
    r = _post_users(s, {"username": "a'b", "password": "pw"})
    _expect(r, 400, "POST /users with username a'b", "error")
    r = _post_users(s, {"username": "x' OR '1'='1", "password": "pw"})
    _expect(r, 400, "POST /users with username x' OR '1'='1", "error")
    u = s.unique("sqlpw")
    pw = "x' OR '1'='1"
    r = _post_users(s, {"username": u, "password": pw})
    _expect(r, 201, "POST /users with password %r" % pw)
    r = _login(s, {"username": u, "password": pw})
    _expect(r, 200, "login with password %r" % pw)
    for wrong in ("x", "x' OR '1'='1' -- ", "' OR '1'='1", "x' OR '1'='2"):
        r = _login(s, {"username": u, "password": wrong})
        _expect(r, 403, "login with password %r" % wrong, "forbidden")
    # A login whose username is an injection attempt is refused.
    r = _login(s, {"username": u + "' OR '1'='1", "password": pw})
    assert r.status_code in (400, 403), \
        "login with an injected username: %s" % _show(r)


def test_register_form_encoded(s):
    u = s.unique("form")
    pw = "p w&=%+?\u00e9"
    body = "username=%s&password=%s" % (u, "p+w%26%3D%25%2B%3F%C3%A9")
    r = _post_users(s, body, headers=FORM)
    got = _expect(r, 201, "form-encoded POST /users")
    assert got == {"username": u}, _show(r)
    r = _login(s, "password=%s&username=%s" % ("p%20w%26%3D%25%2B%3F%C3%A9",
                                                 u), headers=FORM)
    _expect(r, 200, "form-encoded login")
    # The form's password is the decoded one: JSON logins agree.
    r = _login(s, {"username": u, "password": pw})
    _expect(r, 200, "JSON login with the form's decoded password")
    r = _post_users(s, "username=%s" % s.unique("form"), headers=FORM)
    _expect(r, 400, "form-encoded POST /users without password", "error")
    r = _post_users(s, "username=%s&password=%%zz" % s.unique("form"),
                    headers=FORM)
    _expect(r, 400, "form-encoded POST /users with a bad escape", "error")
    r = _post_users(s, "username=a%%20b&password=pw", headers=FORM)
    _expect(r, 400, "form-encoded POST /users with username 'a b'",
            "error")


def test_json_labelled_as_form(s):
    """`curl -d '{...}'` labels a JSON body as a form: it is read as JSON."""
    u = s.unique("curld")
    body = '{"username": "%s", "password": "pw"}' % u
    r = _post_users(s, body, headers=FORM)
    got = _expect(r, 201, "JSON body sent as a form (curl -d)")
    assert got == {"username": u}, _show(r)
    r = _login(s, ' {"username": "%s", "password": "pw"}' % u, headers=FORM)
    _expect(r, 200, "JSON login sent as a form")


def test_register_race_same_name(s):
    """Eight clients register one name at once: one wins, the rest 409."""
    u = s.unique("race")

    def attempt(k):
        return k, s.http("POST", "/users",
                         body={"username": u, "password": "pw%d" % k})

    with ThreadPoolExecutor(8) as ex:
        results = list(ex.map(attempt, range(8)))
    won = [k for k, r in results if r.status_code == 201]
    for k, r in results:
        if r.status_code == 201:
            assert _body(r, "racing POST /users") == {"username": u}
        else:
            _expect(r, 409, "racing POST /users", "duplicate")
    assert len(won) == 1, "%d of 8 racing registrations won" % len(won)
    _expect(_login(s, {"username": u, "password": "pw%d" % won[0]}), 200,
            "login with the winner's password")
    loser = (won[0] + 1) % 8
    _expect(_login(s, {"username": u, "password": "pw%d" % loser}), 403,
            "login with a loser's password", "forbidden")


def test_register_json_any_content_type(s):
    for ct in ("text/plain", "application/octet-stream",
               "application/json; charset=utf-8"):
        u = s.unique("ct")
        r = _post_users(s, {"username": u, "password": "pw"},
                        headers={"Content-Type": ct})
        got = _expect(r, 201, "JSON POST /users sent as %s" % ct)
        assert got == {"username": u}, _show(r)
    r = _login(s, {"username": u, "password": "pw"},
               headers={"Content-Type": "text/plain"})
    _expect(r, 200, "JSON login sent as text/plain")


def test_register_json_escapes(s):
    u = s.unique("esc")
    # Escaped characters in the JSON text decode before use.
    raw = '{"username":"%s","password":"\\u00e9\\n\\"\\/\\\\"}' % u
    r = _post_users(s, raw)
    got = _expect(r, 201, "POST /users with escaped password")
    assert got == {"username": u}, _show(r)
    r = _login(s, {"username": u, "password": "\u00e9\n\"/\\"})
    _expect(r, 200, "login with the decoded escaped password")
    # Unknown keys are ignored.
    u2 = s.unique("extra")
    r = _post_users(s, {"username": u2, "password": "pw", "email": "x@y",
                        "admin": True, "n": [1, {"a": None}]})
    got = _expect(r, 201, "POST /users with extra keys")
    assert got == {"username": u2}, _show(r)


def test_username_case_sensitive(s):
    suffix = s.unique("case")
    upper = "Bob" + suffix
    lower = "bob" + suffix
    r = _post_users(s, {"username": upper, "password": "upper-pw"})
    got = _expect(r, 201, "POST /users %s" % upper)
    assert got == {"username": upper}, _show(r)
    r = _post_users(s, {"username": lower, "password": "lower-pw"})
    got = _expect(r, 201, "POST /users %s after %s" % (lower, upper))
    assert got == {"username": lower}, _show(r)
    _expect(_login(s, {"username": upper, "password": "upper-pw"}), 200,
            "login %s" % upper)
    _expect(_login(s, {"username": lower, "password": "lower-pw"}), 200,
            "login %s" % lower)
    _expect(_login(s, {"username": upper, "password": "lower-pw"}), 403,
            "login %s with %s's password" % (upper, lower), "forbidden")
    _expect(_login(s, {"username": "BOB" + suffix, "password": "upper-pw"}),
            403, "login with a third spelling", "forbidden")


def test_stored_hash_is_argon2id(s):
    u, pw = _user(s)
    h = _stored_hash(s, u)
    assert h.startswith("$argon2id$v=19$m="), "stored hash %r" % h
    m, t, p = _phc_params(h)
    assert m >= 19456 and t >= 2 and p >= 1, \
        "argon2 parameters m=%d,t=%d,p=%d below OWASP's minimum" % (m, t, p)
    assert pw not in h, "the password appears in the stored hash"
    argon2.PasswordHasher().verify(h, pw)
    # Same password, another user: another salt, another hash.
    u2 = s.unique("salt")
    s.register(u2, pw)
    h2 = _stored_hash(s, u2)
    assert h2 != h, "two users with one password got the same hash"
    # A login with current parameters leaves the hash alone.
    s.login(u, pw)
    assert _stored_hash(s, u) == h, "login rewrote an up-to-date hash"


# ------------------------------------------------------------------
# POST /users/login
# ------------------------------------------------------------------

def test_login_ok(s):
    u, pw = _user(s)
    r = _login(s, {"username": u, "password": pw})
    body = _expect(r, 200, "POST /users/login")
    assert isinstance(body, dict) and set(body) == {"token", "expires_in"}, \
        "login body keys: %s" % _show(r)
    tok = body["token"]
    assert isinstance(tok, str), "token not a string: %s" % _show(r)
    parts = tok.split(".")
    assert len(parts) == 3 and all(B64URL.match(x) for x in parts), \
        "token is not three base64url parts: %r" % tok
    exp = body["expires_in"]
    assert isinstance(exp, int) and not isinstance(exp, bool), \
        "expires_in not an integer: %s" % _show(r)
    assert exp == 3600, "expires_in %r, default lifetime is 3600" % exp
    # The token works on the shortener.
    r = s.http("GET", "/", token=tok)
    _expect(r, 200, "GET / with a fresh login token")


def test_login_forbidden(s):
    u, pw = _user(s)
    r = _login(s, {"username": u, "password": pw + "x"})
    wrong = _expect(r, 403, "login with a wrong password", "forbidden")
    r = _login(s, {"username": u, "password": pw.upper()})
    _expect(r, 403, "login with the password in upper case", "forbidden")
    r = _login(s, {"username": s.unique("nobody"), "password": pw})
    unknown = _expect(r, 403, "login as an unknown user", "forbidden")
    assert set(wrong) == set(unknown) and \
        wrong["detail"] == unknown["detail"], \
        "unknown user and wrong password answer differently: %r vs %r" % (
            unknown, wrong)
    assert "token" not in unknown and "token" not in wrong


def test_login_bad_requests(s):
    u, pw = _user(s)
    cases = [
        ("missing password", {"username": u}),
        ("missing username", {"password": pw}),
        ("empty object", {}),
        ("malformed JSON", '{"username": '),
        ("array body", json.dumps([u, pw])),
        ("string body", json.dumps(u)),
        ("empty body", b""),
        ("numeric password", {"username": u, "password": 1}),
        ("null username", {"username": None, "password": pw}),
    ]
    for what, body in cases:
        r = _login(s, body)
        _expect(r, 400, "login with %s" % what, "error")


def test_login_timing_unknown_user(s):
    """An unknown user costs what a wrong password costs."""
    u, pw = _user(s)
    known, unknown = [], []
    for i in range(5):
        t0 = time.monotonic()
        r = _login(s, {"username": u, "password": "wrong%d" % i})
        known.append(time.monotonic() - t0)
        assert r.status_code == 403, _show(r)
        t0 = time.monotonic()
        r = _login(s, {"username": s.unique("ghost"), "password": "w"})
        unknown.append(time.monotonic() - t0)
        assert r.status_code == 403, _show(r)
    k, n = statistics.median(known), statistics.median(unknown)
    assert n >= 0.5 * k, \
        "unknown user answers in %.1f ms, wrong password in %.1f ms: " \
        "usernames can be enumerated by timing" % (n * 1e3, k * 1e3)


# ------------------------------------------------------------------
# PUT /users
# ------------------------------------------------------------------

def test_change_password(s):
    u = s.unique("chg")
    s.register(u, "first")
    r = s.http("PUT", "/users", body={"username": u, "password": "first",
                                      "new_password": "second"})
    body = _expect(r, 200, "PUT /users")
    assert body == {"username": u}, "PUT /users body %s" % _show(r)
    r = _login(s, {"username": u, "password": "first"})
    _expect(r, 403, "login with the old password after PUT", "forbidden")
    r = _login(s, {"username": u, "password": "second"})
    _expect(r, 200, "login with the new password after PUT")
    h = _stored_hash(s, u)
    m, t, p = _phc_params(h)
    assert m >= 19456 and t >= 2, "new hash is weak: %r" % h
    argon2.PasswordHasher().verify(h, "second")


def test_change_password_aliases(s):
    u = s.unique("alias")
    s.register(u, "p0")
    steps = [
        ({"old-password": "p0", "new_password": "p1"}, "p1"),
        ({"old_password": "p1", "new_password": "p2"}, "p2"),
        ({"password": "p2", "new-password": "p3"}, "p3"),
        ({"old-password": "p3", "new-password": "p4"}, "p4"),
    ]
    old = "p0"
    for fields, new in steps:
        body = dict(fields, username=u)
        r = s.http("PUT", "/users", body=body)
        got = _expect(r, 200, "PUT /users with keys %s" % sorted(body))
        assert got == {"username": u}, _show(r)
        _expect(_login(s, {"username": u, "password": old}), 403,
                "old password after PUT with %s" % sorted(body), "forbidden")
        _expect(_login(s, {"username": u, "password": new}), 200,
                "new password after PUT with %s" % sorted(body))
        old = new
    # Form-encoded with the dashed aliases.
    r = s.http("PUT", "/users", headers=FORM,
               body="username=%s&old-password=p4&new-password=p5" % u)
    _expect(r, 200, "form-encoded PUT /users")
    _expect(_login(s, {"username": u, "password": "p5"}), 200,
            "login after form-encoded PUT /users")


def test_change_password_failures(s):
    u = s.unique("chgf")
    s.register(u, "right")
    r = s.http("PUT", "/users", body={"username": u, "password": "wrong",
                                      "new_password": "next"})
    _expect(r, 403, "PUT /users with a wrong old password", "forbidden")
    r = s.http("PUT", "/users", body={"username": s.unique("nobody"),
                                      "password": "right",
                                      "new_password": "next"})
    _expect(r, 403, "PUT /users for an unknown user", "forbidden")
    bad = [
        ("malformed JSON", '{"username": "%s", ' % u),
        ("array body", json.dumps([u, "right", "next"])),
        ("empty body", b""),
        ("missing new password", {"username": u, "password": "right"}),
        ("missing old password", {"username": u, "new_password": "next"}),
        ("missing username", {"password": "right", "new_password": "next"}),
        ("numeric new password", {"username": u, "password": "right",
                                  "new_password": 5}),
        ("null new password", {"username": u, "password": "right",
                               "new_password": None}),
        ("empty new password", {"username": u, "password": "right",
                                "new_password": ""}),
        ("1025-byte new password", {"username": u, "password": "right",
                                    "new_password": "n" * 1025}),
    ]
    for what, body in bad:
        r = s.http("PUT", "/users", body=body)
        _expect(r, 400, "PUT /users with %s" % what, "error")
    # None of that changed the password.
    _expect(_login(s, {"username": u, "password": "right"}), 200,
            "login after refused PUT /users")
    _expect(_login(s, {"username": u, "password": "next"}), 403,
            "login with a refused new password", "forbidden")


# ------------------------------------------------------------------
# Methods, error shape, rehash
# ------------------------------------------------------------------

def test_unsupported_methods(s):
    # DELETE /users deletes the account (issue 16, test_keys.py).
    cases = [("GET", "/users"),
             ("GET", "/users/login"),
             ("PUT", "/users/login"), ("DELETE", "/users/login"),
             ("PATCH", "/users")]
    for method, path in cases:
        r = s.http(method, path)
        assert r.status_code == 405, "%s %s: want 405, got %s" % (
            method, path, _show(r))
        allow = r.headers.get("Allow")
        assert allow, "%s %s: 405 without an Allow header" % (method, path)
        allowed = {x.strip().upper() for x in allow.split(",")}
        assert method not in allowed, \
            "%s %s: Allow %r lists the refused method" % (method, path, allow)
        assert "POST" in allowed, \
            "%s %s: Allow %r lacks POST" % (method, path, allow)
        body = _body(r, "%s %s" % (method, path))
        assert "detail" in body and "message" in body, _show(r)
    for path in ("/users/nosuch", "/users/login/x", "/users/1"):
        r = s.http("POST", path, body={"username": "a", "password": "b"})
        _expect(r, 404, "POST %s" % path, "not found")


def test_error_bodies_have_detail_and_message(s):
    u, pw = _user(s)
    cases = [
        ("POST", "/users", "{"),
        ("POST", "/users", {"username": u, "password": "x"}),
        ("POST", "/users/login", {"username": u, "password": "nope"}),
        ("POST", "/users/login", {"username": u}),
        ("PUT", "/users", {"username": u, "password": "nope",
                           "new_password": "n"}),
        ("PUT", "/users", "[]"),
        ("DELETE", "/users", None),
    ]
    for method, path, body in cases:
        r = s.http(method, path, body=body)
        assert 400 <= r.status_code < 500, "%s %s %r: %s" % (
            method, path, body, _show(r))
        got = _body(r, "%s %s" % (method, path))
        assert isinstance(got, dict) and isinstance(got.get("detail"), str) \
            and isinstance(got.get("message"), str), \
            "%s %s %r: error body lacks detail/message: %s" % (
                method, path, body, _show(r))


def test_rehash_weak_hash_on_login(s):
    u = s.unique("rehash")
    pw = "rehash-me"
    s.register(u, pw)
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=1024,
                                 parallelism=1).hash(pw)
    s.sql("UPDATE users SET password=%s WHERE username=%s", (weak, u))
    assert _stored_hash(s, u) == weak
    # A wrong password does not rewrite anything.
    _expect(_login(s, {"username": u, "password": "nope"}), 403,
            "wrong password against a weak hash", "forbidden")
    assert _stored_hash(s, u) == weak, "a failed login rewrote the hash"
    r = _login(s, {"username": u, "password": pw})
    _expect(r, 200, "login against a weak stored hash")
    h = _stored_hash(s, u)
    assert h != weak, "weak hash not replaced at login"
    m, t, p = _phc_params(h)
    assert m >= 19456 and t >= 2 and p >= 1, \
        "rehash gave m=%d,t=%d,p=%d" % (m, t, p)
    argon2.PasswordHasher().verify(h, pw)
    _expect(_login(s, {"username": u, "password": pw}), 200,
            "login after rehash")
    assert _stored_hash(s, u) == h, "second login rehashed again"
