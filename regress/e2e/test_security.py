"""
End-to-end cases for the security details of issue 8: tokens issued
before a password change are refused after it, login attempts are
rate-limited per client address by nginx (429 with a JSON body), the
pools' unix sockets are created 0660 and owned by the configured
user/group, and the master and its workers run without privileges.

Each test_*(s) gets the shared running stack and puts back what it
changes (nginx's limits, shortd's configuration) in a finally block.
"""

import grp
import json
import os
import pwd
import shutil
import stat
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import jwt

import stack


def _show(r):
    return "%d %s %r" % (r.status_code,
                         {k: v for k, v in r.headers.items()
                          if k in ("Retry-After", "X-Error-Source",
                                   "Content-Type")},
                         r.content[:300])


def _expect(r, status, what, detail=None):
    """Assert the status and a JSON body; for errors also the detail
    word and a message.  -> the body."""
    assert r.status_code == status, "%s: want %d, got %s" % (
        what, status, _show(r))
    ct = r.headers.get("Content-Type", "")
    assert ct.split(";")[0].strip() == "application/json", \
        "%s: Content-Type %r: %s" % (what, ct, _show(r))
    try:
        body = json.loads(r.content)
    except ValueError:
        raise AssertionError("%s: body is not JSON: %s" % (what, _show(r)))
    if detail is not None:
        assert isinstance(body, dict) and body.get("detail") == detail, \
            "%s: want detail %r: %s" % (what, detail, _show(r))
        assert isinstance(body.get("message"), str) and body["message"], \
            "%s: no message: %s" % (what, _show(r))
    return body


def _next_second():
    """Sleep into the next wall-clock second: iat and pw_changed are
    whole seconds, so a change must fall in a later second than the
    token it revokes."""
    time.sleep(1.05 - (time.time() % 1.0))


def _login(s, user, pw):
    return s.http("POST", "/users/login", {"username": user,
                                           "password": pw})


# ------------------------------------------------------------------
# Tokens and password changes
# ------------------------------------------------------------------

def test_token_revoked_after_password_change(s):
    user, pw, old = s.new_user("rev")
    keep = s.shorten(old, "https://example.org/kept/%s" % user)
    _expect(s.http("GET", "/", token=old), 200, "GET / before the change")
    _next_second()
    r = s.http("PUT", "/users", {"username": user, "password": pw,
                                 "new_password": pw + "-new"})
    _expect(r, 200, "PUT /users")

    # Every authenticated call refuses the old token, with the reason.
    for method, path, body in (("GET", "/", None),
                               ("POST", "/", {"value": "https://x.org/"}),
                               ("PUT", "/" + keep,
                                {"url": "https://evil.example/"}),
                               ("DELETE", "/" + keep, None),
                               ("DELETE", "/", None)):
        r = s.http(method, path, body, token=old)
        b = _expect(r, 403, "%s %s with a token from before the password "
                    "change" % (method, path), "forbidden")
        assert "revoked" in b["message"], "%s %s: %s" % (method, path,
                                                         _show(r))
    r = s.http("GET", "/", token="Bearer " + old)
    _expect(r, 403, "GET / with Bearer and the old token", "forbidden")

    # A token from the same second as the change is good: logging in
    # right after changing the password works.
    new = s.login(user, pw + "-new")
    b = _expect(s.http("GET", "/", token=new), 200, "GET / new token")
    assert [it["id"] for it in b["items"]] == [keep], \
        "the refused calls changed the links: %r" % b
    r = s.http("GET", "/" + keep)
    assert r.status_code == 301 and r.headers.get("Location") == \
        "https://example.org/kept/%s" % user, \
        "redirect (no token) after the change: %s" % _show(r)
    s.shorten(new, "https://example.org/after/%s" % user)


def test_token_of_deleted_user_refused(s):
    user, pw, tok = s.new_user("gone")
    s.shorten(tok, "https://example.org/gone")
    s.sql("DELETE FROM users WHERE username = %s", (user,))
    for method in ("GET", "POST", "DELETE"):
        r = s.http(method, "/", {"value": "https://x.org/"}
                   if method == "POST" else None, token=tok)
        _expect(r, 403, "%s / with the token of a deleted user" % method,
                "forbidden")
    assert s.sql("SELECT COUNT(*) FROM urls WHERE `user` = %s",
                 (user,))[0][0] == 0


def _token(s, user, iat):
    """A token of user issued at iat (unix seconds), valid an hour."""
    return jwt.encode({"sub": user, "iat": iat, "exp": iat + 3600},
                      s.jwt_secret, algorithm="HS256")


def _links(s, user):
    return s.sql("SELECT id, value FROM urls WHERE `user` = %s "
                 "ORDER BY id", (user,))


# Bodies of POST / each refused for a reason of their own (400, or 409:
# the id is taken); "{id}" is an id that exists.
_REFUSED_BODIES = (
    ("malformed JSON", '{"value": '),
    ("no value", {"url2": "https://example.org/"}),
    ("invalid URL", {"value": "ftp://example.org/"}),
    ("reserved id", {"value": "https://example.org/", "id": "users"}),
    ("expiry in the past", {"value": "https://example.org/",
                            "expires_at": "2000-01-01T00:00:00Z"}),
    ("reuse with an id", {"value": "https://example.org/", "reuse": True,
                          "id": "rv-{id}"}),
    ("id taken", {"value": "https://example.org/", "id": "{id}"}),
)


def _refused_body(body, taken):
    if isinstance(body, dict):
        return {k: v.replace("{id}", taken) if isinstance(v, str) else v
                for k, v in body.items()}
    return body


def test_create_with_revoked_token(s):
    """A create checks its token's user in the insert itself: a revoked
    token writes nothing and gets 403, with any body, before the 400
    or 409 the body would get with a good token."""
    user, pw, old = s.new_user("crev")
    taken = s.http("POST", "/", {"value": "https://example.org/t",
                                 "id": "taken-" + user}, token=old)
    taken = _expect(taken, 201, "POST / with an id")["id"]
    # With the good token each body gets its own refusal.
    for what, body in _REFUSED_BODIES:
        r = s.http("POST", "/", _refused_body(body, taken), token=old)
        assert r.status_code in (400, 409), "%s with a good token: %s" % (
            what, _show(r))
    before = _links(s, user)
    _next_second()
    r = s.http("PUT", "/users", {"username": user, "password": pw,
                                 "new_password": pw + "-new"})
    _expect(r, 200, "PUT /users")

    for what, body in (("a good body", {"value": "https://x.org/rev"}),
                       ("a new id", {"value": "https://x.org/rev",
                                     "id": "new-" + user}),
                       ("limits", {"value": "https://x.org/rev",
                                   "expires_in": 60, "max_visits": 3}),
                       ("reuse", {"value": "https://example.org/t",
                                  "reuse": True}),
                       ("reuse of a new URL", {"value": "https://x.org/r",
                                               "reuse": True})) \
            + _REFUSED_BODIES:
        r = s.http("POST", "/", _refused_body(body, taken), token=old)
        b = _expect(r, 403, "POST / with %s and a token from before the "
                    "password change" % what, "forbidden")
        assert b["message"] == "token revoked: the password changed " \
            "after it was issued", "%s: %s" % (what, _show(r))
    assert _links(s, user) == before, \
        "refused creates changed the links: %r -> %r" % (before,
                                                         _links(s, user))
    assert not s.sql("SELECT 1 FROM urls WHERE id = %s",
                     ("new-" + user,)), "a refused create took its id"

    # The new token creates, so the password change was the reason.
    new = s.login(user, pw + "-new")
    r = s.http("POST", "/", {"value": "https://x.org/rev",
                             "id": "new-" + user}, token=new)
    _expect(r, 201, "POST / with the new token")
    assert ("new-" + user, "https://x.org/rev") in _links(s, user)


def test_create_token_second_of_change(s):
    """pw_changed and iat are whole seconds: a token from the very
    second of the change is good, one from the second before is not,
    for a create as for any other call."""
    user, pw, tok = s.new_user("csec")
    t = int(time.time())
    s.sql("UPDATE users SET pw_changed = %s WHERE username = %s",
          (t, user))
    same, before = _token(s, user, t), _token(s, user, t - 1)
    r = s.http("POST", "/", {"value": "https://example.org/same"},
               token=same)
    made = _expect(r, 201, "POST / with a token from the second of the "
                   "change")["id"]
    r = s.http("POST", "/", {"value": "https://example.org/same",
                             "reuse": True}, token=same)
    assert _expect(r, 200, "reuse with that token")["id"] == made
    _expect(s.http("GET", "/", token=same), 200, "GET / with that token")
    for what, body in (("a good body", {"value": "https://example.org/b"}),
                       ("an invalid URL", {"value": "nope"}),
                       ("reuse", {"value": "https://example.org/same",
                                  "reuse": True})):
        r = s.http("POST", "/", body, token=before)
        b = _expect(r, 403, "POST / with %s and a token from the second "
                    "before the change" % what, "forbidden")
        assert "revoked" in b["message"], _show(r)
    _expect(s.http("GET", "/", token=before), 403,
            "GET / with a token from the second before", "forbidden")
    assert [v for _, v in _links(s, user)] == ["https://example.org/same"]
    # The insert copies the binary hash as it was sent (what reuse
    # finds links by), whatever the connection's character set.
    assert s.sql("SELECT value_hash = UNHEX(SHA2(value, 256)) FROM urls "
                 "WHERE id = %s", (made,)) == ((1,),), \
        "value_hash of %s is not SHA-256 of its value" % made


def test_create_of_deleted_user(s):
    """A deleted user's token: 403 "no longer exists" for any body of
    POST /, and no row (the foreign key would refuse it, the insert
    does not even try)."""
    user, pw, tok = s.new_user("cdel")
    other, _, otok = s.new_user("cdel")
    taken = s.http("POST", "/", {"value": "https://example.org/o",
                                 "id": "taken-" + other}, token=otok)
    taken = _expect(taken, 201, "POST / with an id")["id"]
    s.sql("DELETE FROM users WHERE username = %s", (user,))
    for what, body in (("a good body", {"value": "https://x.org/del"}),
                       ("a new id", {"value": "https://x.org/del",
                                     "id": "new-" + user}),
                       ("reuse", {"value": "https://x.org/del",
                                  "reuse": True})) + _REFUSED_BODIES:
        r = s.http("POST", "/", _refused_body(body, taken), token=tok)
        b = _expect(r, 403, "POST / with %s and the token of a deleted "
                    "user" % what, "forbidden")
        assert b["message"] == "token revoked: its user no longer " \
            "exists", "%s: %s" % (what, _show(r))
    assert not _links(s, user)
    assert not s.sql("SELECT 1 FROM urls WHERE id = %s",
                     ("new-" + user,)), "a refused create took its id"


def test_rehash_on_login_keeps_tokens(s):
    """A stronger argon2 setting re-hashes the stored password at the
    next login; that is not a password change, so tokens stay valid."""
    user, pw, tok = s.new_user("rh")
    before = s.sql("SELECT password, pw_changed FROM users "
                   "WHERE username = %s", (user,))[0]
    try:
        s.restart_shortd({"argon2_iterations": 3})
        _next_second()
        s.login(user, pw)
        after = s.sql("SELECT password, pw_changed FROM users "
                      "WHERE username = %s", (user,))[0]
        assert ",t=3," in after[0] and after[0] != before[0], \
            "login did not re-hash with t=3: %r -> %r" % (before[0],
                                                          after[0])
        assert after[1] == before[1], \
            "the re-hash moved pw_changed %r -> %r" % (before[1], after[1])
        _expect(s.http("GET", "/", token=tok), 200,
                "GET / with a token from before the re-hash")
    finally:
        s.restart_shortd()


# ------------------------------------------------------------------
# Login rate limit (nginx limit_req)
# ------------------------------------------------------------------

def _restart_nginx(s, limit):
    s.stop_nginx()
    s.login_limit = limit
    s.start_nginx()


def test_login_rate_limited(s):
    user, pw, tok = s.new_user("rl")
    link = s.shorten(tok, "https://example.org/rl")
    saved = s.login_limit
    try:
        # One attempt a minute with a burst of 3: a burst of 12 gets at
        # most 1 + 3 (+1 if a minute turns) through, nginx refuses the
        # rest before any password is hashed.
        _restart_nginx(s, ("1r/m", 3))
        codes = []
        for n in range(12):
            pwn = pw if n % 2 == 0 else "wrong"
            r = _login(s, user, pwn)
            codes.append(r.status_code)
            if r.status_code == 429:
                b = _expect(r, 429, "login attempt %d" % n,
                            "too many requests")
                assert r.headers.get("Retry-After"), _show(r)
                assert r.headers.get("X-Error-Source") == "nginx", _show(r)
                assert "token" not in b
            else:
                assert r.status_code == (200 if n % 2 == 0 else 403), \
                    "login attempt %d: %s" % (n, _show(r))
        passed = len([c for c in codes if c != 429])
        assert 4 <= passed <= 5, "login burst of 12 with burst=3: %r" % (
            codes,)

        # Only logins are limited: the rest of the API is not.
        _expect(s.http("GET", "/", token=tok), 200, "GET / while limited")
        r = s.http("GET", "/" + link)
        assert r.status_code == 301, "redirect while limited: %s" % (
            _show(r))
        u2 = s.unique("rl2")
        _expect(s.http("POST", "/users", {"username": u2,
                                          "password": "pw"}),
                201, "POST /users while logins are limited")
        _expect(s.http("PUT", "/users", {"username": u2, "password": "pw",
                                         "new_password": "pw2"}),
                200, "PUT /users while logins are limited")

        # The limit operators get: a person or a script logging in a
        # handful of times, even all at once, never sees it.
        _restart_nginx(s, stack.LOGIN_LIMIT_SHIPPED)
        for n in range(5):
            _expect(_login(s, user, pw), 200, "login %d, shipped limit" % n)
        with ThreadPoolExecutor(8) as ex:
            rs = list(ex.map(lambda _: _login(s, user, pw), range(12)))
        bad = [_show(r) for r in rs if r.status_code != 200]
        assert not bad, "12 parallel logins under the shipped limit " \
            "(%s burst %d): %s" % (stack.LOGIN_LIMIT_SHIPPED + (bad,))
    finally:
        _restart_nginx(s, saved)
    _expect(_login(s, user, pw), 200, "login after restoring the limit")


# ------------------------------------------------------------------
# Sockets and privileges
# ------------------------------------------------------------------

def _ids(pid):
    """(uids, gids, groups, CapEff, CapPrm) from /proc/PID/status."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.split()
    return ([int(x) for x in out["Uid"]], [int(x) for x in out["Gid"]],
            [int(x) for x in out.get("Groups", [])],
            int(out["CapEff"][0], 16), int(out["CapPrm"][0], 16))


def test_sockets_and_workers_unprivileged(s):
    """shortd started as root with user/group: the sockets are 0660 and
    belong to them, the master and every worker run as them with no
    capability left, and the service works through nginx."""
    if os.geteuid() != 0:
        # Not root: shortd must say it cannot drop privileges, and
        # keep running as the caller.
        try:
            s.restart_shortd({"user": "nobody", "group": "nogroup"})
            assert "not started as root" in s.shortd_log(), \
                "no warning about user= without root"
            _expect(s.http("GET", "/nosuchid"), 404, "GET as non-root")
        finally:
            s.restart_shortd()
        return

    # The suite's own shortd runs as root without user=: it says so.
    assert "running as root: set user" in s.shortd_log(), \
        "no warning about workers running as root"
    user, group = "nobody", "nogroup"
    uid, gid = pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid
    # The unprivileged daemon cannot write to the stack's directory:
    # its sanitizer logs go to one it can, checked below.
    sandir = tempfile.mkdtemp(prefix="shortd-san-")
    os.chmod(sandir, 0o1777)
    env = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:log_path=" +
           os.path.join(sandir, "asan"),
           "UBSAN_OPTIONS": "print_stacktrace=1:log_path=" +
           os.path.join(sandir, "ubsan")}
    try:
        s.restart_shortd({"user": user, "group": group,
                          "listen_mode": "0660"}, env=env)
        for path in (s.auth_sock, s.shortener_sock):
            st = os.stat(path)
            assert stat.S_ISSOCK(st.st_mode), path
            assert stat.S_IMODE(st.st_mode) == 0o660, \
                "%s: mode %o, want 0660" % (path, stat.S_IMODE(st.st_mode))
            assert (st.st_uid, st.st_gid) == (uid, gid), \
                "%s: owner %d:%d, want %s:%s (%d:%d)" % (
                    path, st.st_uid, st.st_gid, user, group, uid, gid)

        auth = s.wait_workers("auth", 1)
        short = s.wait_workers("shortener", 1)
        assert auth and short, "workers: auth %r shortener %r" % (auth,
                                                                  short)
        for what, pid in [("master", s.master_pid)] + \
                [("worker", p) for p in auth + short]:
            uids, gids, groups, capeff, capprm = _ids(pid)
            assert uids == [uid] * 4, "%s %d: uids %r, want %d" % (
                what, pid, uids, uid)
            assert gids == [gid] * 4, "%s %d: gids %r, want %d" % (
                what, pid, gids, gid)
            assert groups == [gid], "%s %d: groups %r" % (what, pid, groups)
            assert capeff == 0 and capprm == 0, \
                "%s %d: capabilities left: eff %x prm %x" % (
                    what, pid, capeff, capprm)

        # Through nginx (whose workers run as nobody) at mode 0660.
        u, pw, tok = s.new_user("priv")
        i = s.shorten(tok, "https://example.org/priv")
        r = s.http("GET", "/" + i)
        assert r.status_code == 301, "redirect: %s" % _show(r)
        assert s.stop_shortd() == 0, "shortd as nobody: unclean stop"
        reports = ""
        for name in sorted(os.listdir(sandir)):
            with open(os.path.join(sandir, name), errors="replace") as f:
                reports += "==== %s\n%s" % (name, f.read())
        assert not reports.strip(), "sanitizer reports:\n" + reports[-8000:]
    finally:
        s.stop_shortd()
        s.start_shortd()
        shutil.rmtree(sandir, ignore_errors=True)
