"""
End-to-end cases for API keys and account deletion (issue 16), through
nginx and MariaDB: a key is made with a login token and shown once,
listed without its secret, works wherever a token does (X-Api-Key or
Authorization), is refused for managing keys, changing the password or
deleting the account, and once revoked, expired or malformed gets the
403 a bad token gets; a revocation is seen by the very next request on
every shortener worker.  DELETE /users removes the account with its
links, tags and keys, and its tokens are refused at once.
"""

import datetime
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_cache import _each_worker, cached  # noqa: E402

KEY_RE = re.compile(r"^sk_([0-9A-Za-z]{12})_[0-9A-Za-z]{43}$")
RFC3339_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")
FLUSH_WAIT = 15


def _show(r):
    return "%d %r" % (r.status_code, r.content[:300])


def _expect(r, status, what, detail=None):
    assert r.status_code == status, "%s: want %d, got %s" % (
        what, status, _show(r))
    if status == 204:
        assert r.content == b"", what
        return None
    body = json.loads(r.content)
    if detail is not None:
        assert body.get("detail") == detail and body.get("message"), \
            "%s: want detail %r: %s" % (what, detail, _show(r))
    return body


def _key(s, tok, name="ci bot", **extra):
    body = {"name": name}
    body.update(extra)
    return _expect(s.http("POST", "/users/keys", body, token=tok), 201,
                   "POST /users/keys")


def _forbidden(r, what):
    _expect(r, 403, what, "forbidden")


def test_key_create_list_and_use(s):
    user, pw, tok = s.new_user("key")
    k = _key(s, tok, "ci bot \u00e9")
    m = KEY_RE.match(k["key"])
    assert m and m.group(1) == k["id"], k
    assert k["name"] == "ci bot \u00e9" and k["expires_at"] is None and \
        RFC3339_RE.match(k["created_at"]), k
    assert sorted(k) == ["created_at", "expires_at", "id", "key", "name"]
    # Stored as a hash of the secret only.
    row = s.sql("SELECT `user`, name, HEX(secret_hash), revoked FROM "
                "api_keys WHERE id = %s", (k["id"],))
    assert row and row[0][0] == user and row[0][3] == 0, row
    assert k["key"].split("_")[2] not in json.dumps(row), row
    # Listed without the secret, newest first.
    k2 = _key(s, tok, "second", expires_at="2099-01-01T00:00:00Z")
    assert k2["expires_at"] == "2099-01-01T00:00:00Z", k2
    got = _expect(s.http("GET", "/users/keys", token=tok), 200, "list")
    assert [x["id"] for x in got["items"]] == [k2["id"], k["id"]], got
    for x in got["items"]:
        assert sorted(x) == ["created_at", "expires_at", "id",
                             "last_used_at", "name"], x
        assert x["last_used_at"] is None, x
    # The key works wherever a token does, in either header.
    hk = {"X-Api-Key": k["key"]}
    r = _expect(s.http("POST", "/", {"value": "https://example.com/k"},
                       headers=hk), 201, "POST / with X-Api-Key")
    i = r["id"]
    got = _expect(s.http("GET", "/", token=k["key"]), 200,
                  "GET / with Authorization: key")
    assert [x["id"] for x in got["items"]] == [i], got
    got = _expect(s.http("GET", "/", token="Bearer " + k["key"]), 200,
                  "GET / with Authorization: Bearer key")
    assert [x["id"] for x in got["items"]] == [i], got
    _expect(s.http("PUT", "/" + i, {"url": "https://example.com/k2"},
                   headers=hk), 200, "PUT with a key")
    _expect(s.http("GET", "/%s/stats" % i, headers=hk), 200, "stats")
    _expect(s.http("DELETE", "/" + i, headers=hk), 204, "DELETE with a key")
    # The links are the user's: the login token sees what the key made.
    j = s.shorten(k["key"], "https://example.com/by-key")
    got = _expect(s.http("GET", "/", token=tok), 200, "GET / token")
    assert [x["id"] for x in got["items"]] == [j], got


def test_key_refused_for_management(s):
    user, pw, tok = s.new_user("keym")
    k = _key(s, tok)
    other = _key(s, tok, "other")
    for hdrs in ({"X-Api-Key": k["key"]}, {"Authorization": k["key"]},
                 {"Authorization": "Bearer " + k["key"]},
                 # A key next to a good token still counts as a key.
                 {"X-Api-Key": k["key"], "Authorization": tok}):
        _forbidden(s.http("POST", "/users/keys", {"name": "x"},
                          headers=hdrs), "a key makes a key")
        _forbidden(s.http("GET", "/users/keys", headers=hdrs),
                   "a key lists keys")
        _forbidden(s.http("DELETE", "/users/keys/" + other["id"],
                          headers=hdrs), "a key revokes a key")
        _forbidden(s.http("PUT", "/users", {
            "username": user, "password": pw, "new_password": "n" + pw},
            headers=hdrs), "a key changes the password")
        _forbidden(s.http("DELETE", "/users", {"password": pw},
                          headers=hdrs), "a key deletes the account")
    # Nothing happened: both keys live, the password is the old one.
    got = _expect(s.http("GET", "/users/keys", token=tok), 200, "list")
    assert len(got["items"]) == 2, got
    s.login(user, pw)


def test_key_bad_ones_are_forbidden(s):
    user, pw, tok = s.new_user("keyb")
    k = _key(s, tok)
    kid = k["id"]
    secret = k["key"].split("_")[2]
    flip = ("A" if secret[0] != "A" else "B") + secret[1:]
    bad = ["sk_", "sk_%s" % kid, "sk_%s_" % kid, k["key"] + "x",
           k["key"][:-1], "sk_%s_%s" % (kid, flip),
           "sk_%s_%s" % ("Z" * 12, secret), "sk_%s_%s" % (kid, "!" * 43),
           "sk_" + "\u00e9" * 10]
    for b in bad:
        for hdrs in ({"X-Api-Key": b.encode("utf-8")},
                     {"Authorization": b.encode("utf-8")}):
            _forbidden(s.http("GET", "/", headers=hdrs), "key %r" % b)
            _forbidden(s.http("POST", "/", {"value": "https://e.com/"},
                              headers=hdrs), "create, key %r" % b)
    # An empty X-Api-Key is a missing key, not a fallback to nothing.
    _forbidden(s.http("GET", "/", headers={"X-Api-Key": ""}), "empty")
    # Expired: refused like a bad token.
    s.sql("UPDATE api_keys SET expires_us = %s WHERE id = %s",
          (int(time.time() * 1e6) - 1, kid))
    _forbidden(s.http("GET", "/", headers={"X-Api-Key": k["key"]}),
               "an expired key")
    assert not s.sql("SELECT id FROM urls WHERE `user` = %s", (user,))


def test_key_fields(s):
    user, pw, tok = s.new_user("keyf")
    now = datetime.datetime.now(datetime.timezone.utc)
    past = (now - datetime.timedelta(seconds=5)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    for body, field in [({}, "name"), ({"name": ""}, "name"),
                        ({"name": 5}, "name"), ({"name": None}, "name"),
                        ({"name": "x" * 101}, "name"),
                        ({"name": "a\nb"}, "name"),
                        ({"name": "x", "expires_at": "soon"}, "expires_at"),
                        ({"name": "x", "expires_at": past}, "expires_at"),
                        ({"name": "x", "expires_at": "3000-01-01T00:00:00Z"},
                         "expires_at"),
                        ({"name": "x", "expires_at": 5}, "expires_at")]:
        got = _expect(s.http("POST", "/users/keys", body, token=tok), 400,
                      "POST /users/keys %r" % body, "error")
        assert field in got["message"], (body, got)
    _expect(s.http("POST", "/users/keys", raw="{", token=tok), 400,
            "malformed body", "error")
    # The longest name, in characters not bytes.
    _key(s, tok, "\u00e9" * 100)
    # Credentials first: nothing, a bad token.
    _forbidden(s.http("POST", "/users/keys", {"name": "x"}), "no token")
    _forbidden(s.http("GET", "/users/keys", token="nope"), "bad token")
    _forbidden(s.http("DELETE", "/users/keys/AAAAAAAAAAAA"), "no token")
    r = s.http("PUT", "/users/keys")
    assert r.status_code == 405 and "POST" in r.headers["Allow"], _show(r)
    r = s.http("GET", "/users/keys/AAAAAAAAAAAA", token=tok)
    assert r.status_code == 405 and r.headers["Allow"] == "DELETE", _show(r)
    _expect(s.http("DELETE", "/users/keys/nope", token=tok), 404,
            "a malformed key id", "not found")


def test_key_limit(s):
    user, pw, tok = s.new_user("keyl")
    s.sql("INSERT INTO api_keys (id, `user`, name, secret_hash, "
          "created_us) SELECT CONCAT('lim', LPAD(seq, 9, '0')), %s, 'n', "
          "UNHEX(SHA2(seq, 256)), seq FROM seq_1_to_100", (user,))
    got = _expect(s.http("POST", "/users/keys", {"name": "x"}, token=tok),
                  400, "the 101st key", "error")
    assert "100" in got["message"], got
    _expect(s.http("DELETE", "/users/keys/lim000000001", token=tok), 204,
            "revoke one")
    _key(s, tok)


def test_key_revoke(s):
    user, pw, tok = s.new_user("keyr")
    other, opw, otok = s.new_user("keyr")
    k = _key(s, tok)
    ok = _key(s, otok)
    hk = {"X-Api-Key": k["key"]}
    i = s.shorten(k["key"], "https://example.com/r")
    _forbidden(s.http("DELETE", "/users/keys/" + ok["id"], token=tok),
               "someone else's key")
    _expect(s.http("DELETE", "/users/keys/AAAAAAAAAAAA", token=tok), 404,
            "unknown key", "not found")
    _expect(s.http("DELETE", "/users/keys/" + k["id"], token=tok), 204,
            "revoke")
    # Refused by the very next request, and again.
    for _ in range(3):
        _forbidden(s.http("GET", "/", headers=hk), "revoked key")
        _forbidden(s.http("DELETE", "/" + i, headers=hk), "revoked key")
    _expect(s.http("DELETE", "/users/keys/" + k["id"], token=tok), 404,
            "revoked twice", "not found")
    got = _expect(s.http("GET", "/users/keys", token=tok), 200, "list")
    assert got["items"] == [], got
    # The other user's key is untouched; the link too.
    _expect(s.http("GET", "/", headers={"X-Api-Key": ok["key"]}), 200,
            "the other user's key")
    assert s.http("GET", "/" + i).status_code == 301


def test_key_last_used_in_batches(s):
    user, pw, tok = s.new_user("keyu")
    k = _key(s, tok)
    t0 = time.time()
    for _ in range(5):
        _expect(s.http("GET", "/", headers={"X-Api-Key": k["key"]}), 200,
                "use")
    deadline = time.time() + FLUSH_WAIT
    used = None
    while time.time() < deadline:
        got = _expect(s.http("GET", "/users/keys", token=tok), 200, "list")
        used = got["items"][0]["last_used_at"]
        if used is not None:
            break
        time.sleep(0.2)
    assert used is not None, "last_used_at never written"
    t = datetime.datetime.strptime(used[:19], "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    assert t0 - 2 <= t <= time.time() + 1, (t0, used)


def test_password_change_keeps_keys(s):
    user, pw, tok = s.new_user("keyp")
    k = _key(s, tok)
    time.sleep(1.1)     # tokens of the change's second stay valid
    _expect(s.http("PUT", "/users", {"username": user, "password": pw,
                                     "new_password": pw + "2"}), 200,
            "change the password")
    _forbidden(s.http("GET", "/", token=tok), "the old token")
    _expect(s.http("GET", "/", headers={"X-Api-Key": k["key"]}), 200,
            "the key after a password change")


@cached()
def test_revocation_seen_by_every_worker(s):
    user, pw, tok = s.new_user("keyw")
    k = _key(s, tok)
    hk = {"X-Api-Key": k["key"]}

    def works():
        for _ in range(5):
            _expect(s.http("GET", "/", headers=hk), 200, "key in use")
    _each_worker(s, works)
    _expect(s.http("DELETE", "/users/keys/" + k["id"], token=tok), 204,
            "revoke")

    def refused():
        for _ in range(5):
            _forbidden(s.http("GET", "/", headers=hk), "revoked key")
            _forbidden(s.http("POST", "/", {"value": "https://e.com/"},
                              headers=hk), "revoked key creates")
    _each_worker(s, refused)


def test_delete_account(s):
    user, pw, tok = s.new_user("del")
    other, opw, otok = s.new_user("del")
    k = _key(s, tok)
    ids = [s.shorten(tok, "https://example.com/d%d" % n) for n in range(3)]
    keep = s.shorten(otok, "https://example.com/keep")
    # Refusals first: no token, a bad one, a key, no or a wrong password.
    _forbidden(s.http("DELETE", "/users", {"password": pw}), "no token")
    _forbidden(s.http("DELETE", "/users", {"password": pw}, token="x.y.z"),
               "bad token")
    _forbidden(s.http("DELETE", "/users", {"password": pw},
                      headers={"X-Api-Key": k["key"]}), "a key")
    got = _expect(s.http("DELETE", "/users", {}, token=tok), 400,
                  "no password", "error")
    assert "password" in got["message"], got
    _expect(s.http("DELETE", "/users", raw="{", token=tok), 400,
            "malformed", "error")
    _forbidden(s.http("DELETE", "/users", {"password": pw + "x"},
                      token=tok), "wrong password")
    # Someone else's token deletes someone else's account, not this one.
    assert s.sql("SELECT COUNT(*) FROM users WHERE username = %s",
                 (user,))[0][0] == 1
    # Redirected first, so that the pool's redirect cache holds them.
    for i in ids:
        for _ in range(2):
            assert s.http("GET", "/" + i).status_code == 301
    _expect(s.http("DELETE", "/users", {"password": pw}, token=tok), 204,
            "delete the account")
    # Gone at once: token, key, links, rows; the other user untouched.
    _forbidden(s.http("GET", "/", token=tok), "the token afterwards")
    _forbidden(s.http("GET", "/users/keys", token=tok), "keys afterwards")
    _forbidden(s.http("GET", "/", headers={"X-Api-Key": k["key"]}),
               "the key afterwards")
    for i in ids:
        _expect(s.http("GET", "/" + i), 404, "a deleted link", "not found")
    for table, col in (("users", "username"), ("urls", "`user`"),
                       ("api_keys", "`user`"), ("url_tags", "`user`")):
        assert s.sql("SELECT COUNT(*) FROM %s WHERE %s = %%s" % (
            table, col), (user,))[0][0] == 0, table
    assert s.http("GET", "/" + keep).status_code == 301
    _expect(s.http("DELETE", "/users", {"password": pw}, token=tok), 403,
            "deleted twice", "forbidden")
    # The name is free again; the old token does not work for the new
    # account (it was issued before the new one's password).
    time.sleep(1.1)
    s.register(user, "new-" + pw)
    _forbidden(s.http("GET", "/", token=tok), "old token, new account")
    r = s.http("GET", "/users")
    assert r.status_code == 405 and "DELETE" in r.headers["Allow"], _show(r)


# ------------------------------------------------------------------
# Schema version 5: api_keys, url_tags, and urls' title, tags, search
# ------------------------------------------------------------------

def _fks(s, db):
    return sorted(tuple(x) for x in s.sql(
        "SELECT rc.TABLE_NAME, rc.CONSTRAINT_NAME, k.COLUMN_NAME, "
        "k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME, rc.DELETE_RULE "
        "FROM information_schema.REFERENTIAL_CONSTRAINTS rc "
        "JOIN information_schema.KEY_COLUMN_USAGE k "
        "ON k.CONSTRAINT_SCHEMA = rc.CONSTRAINT_SCHEMA "
        "AND k.CONSTRAINT_NAME = rc.CONSTRAINT_NAME "
        "AND k.TABLE_NAME = rc.TABLE_NAME "
        "WHERE rc.CONSTRAINT_SCHEMA = %s", (db,)))


def _assert_v5(s, db):
    tables = [t[0] for t in s.sql(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE "
        "TABLE_SCHEMA = %s AND ENGINE = 'InnoDB'", (db,))]
    assert {"api_keys", "url_tags"} <= set(tables), tables
    fks = _fks(s, db)
    for want in [("api_keys", "fk_keys_user", "user", "users", "username",
                  "CASCADE"),
                 ("url_tags", "fk_tags_url", "id", "urls", "id",
                  "CASCADE")]:
        assert want in fks, (want, fks)
    cols = {c[0]: c[1:] for c in s.sql(
        "SELECT COLUMN_NAME, COLUMN_TYPE, COLLATION_NAME, EXTRA FROM "
        "information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND "
        "TABLE_NAME = 'urls'", (db,))}
    assert cols["title"][:2] == ("varchar(200)", "utf8mb4_bin"), cols
    assert cols["tags"][1] == "ascii_bin", cols
    assert cols["search"][1] == "utf8mb4_unicode_ci" and \
        "STORED" in cols["search"][2].upper(), cols
    idx = s.sql("SELECT INDEX_TYPE FROM information_schema.STATISTICS "
                "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = 'urls' AND "
                "INDEX_NAME = 'ft_urls_search'", (db,))
    assert idx == (("FULLTEXT",),), idx
    kcols = [c[0] for c in s.sql(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE "
        "TABLE_SCHEMA = %s AND TABLE_NAME = 'api_keys' ORDER BY "
        "ORDINAL_POSITION", (db,))]
    assert kcols == ["id", "user", "name", "secret_hash", "created_us",
                     "expires_us", "last_used_us", "revoked"], kcols


def test_schema_v5(s):
    _assert_v5(s, "shortd")


def test_schema_upgrade_from_v3(s):
    from test_features import (SCHEMA_V3, SCHEMA_VERSION, _drop,
                               _old_and_new, _refused, _upgrade_twice)
    old, new, conn = _old_and_new(s, "shortd_v3_", SCHEMA_V3)
    try:
        with conn.cursor() as c:
            c.execute("INSERT INTO users VALUES ('cat', 'x', 1, 1)")
            c.execute("INSERT INTO urls (id, `user`, value, value_hash, "
                      "created_us, updated_us) VALUES ('cat-a', 'cat', "
                      "'https://example.com/Caf\u00e9-Cr\u00e8me', NULL, 5, 5)")
        _refused(s, old, "schema version 3", "needs %d" % SCHEMA_VERSION,
                 "apply sql/schema.sql")
        _upgrade_twice(s, old, new)
        for db in (old, new):
            _assert_v5(s, db)
        # The old row is in the search index, case and accents aside.
        q = ("SELECT id FROM %s.urls WHERE MATCH(search) AGAINST "
             "(%%s IN BOOLEAN MODE)" % old)
        assert s.sql(q, ("+cafe*",)) == (("cat-a",),)
        assert s.sql(q, ("+CREME",)) == (("cat-a",),)
        assert s.sql(q, ("+cat-a",)) == (("cat-a",),)
        plan = s.sql("EXPLAIN " + q, ("+cafe*",))
        assert plan[0][3] == "fulltext", plan
        # shortd runs on it: the old link resolves, keys work.
        s.restart_shortd({"db_name": old})
        r = s.http("GET", "/cat-a")
        assert r.status_code == 301, _show(r)
        user, pw, tok = s.new_user("keyv3")
        k = _key(s, tok)
        _expect(s.http("GET", "/", headers={"X-Api-Key": k["key"]}), 200,
                "a key on the upgraded database")
    finally:
        _drop(s, conn, (old, new))
