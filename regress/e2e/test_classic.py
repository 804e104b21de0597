"""
The classic client flow, as the original system's test harness ran it:
register, login, raw token in Authorization, create, update, delete,
list, delete all, list empty.
"""

import json


def _show(r):
    return "%d %r" % (r.status_code, r.content[:300])


def _json(r, status, what):
    assert r.status_code == status, "%s: want %d, got %s" % (what, status,
                                                            _show(r))
    assert r.headers.get("Content-Type", "").startswith("application/json"), \
        "%s: Content-Type %r" % (what, r.headers.get("Content-Type"))
    return json.loads(r.content)


def test_classic_flow(s):
    user = s.unique("classic")
    pw = "classic-password"
    body = _json(s.http("POST", "/users",
                        body={"username": user, "password": pw}),
                 201, "register")
    assert body == {"username": user}, body

    body = _json(s.http("POST", "/users/login",
                        body={"username": user, "password": pw}),
                 200, "login")
    token = body["token"]
    assert isinstance(token, str) and token.count(".") == 2, body

    u1 = "https://www.example.com/first"
    u2 = "https://www.example.com/second?x=1"
    id1 = _json(s.http("POST", "/", body={"value": u1}, token=token),
                201, "create first")["id"]
    id2 = _json(s.http("POST", "/", body={"value": u2}, token=token),
                201, "create second")["id"]
    assert id1 != id2

    r = s.http("GET", "/" + id1)
    assert _json(r, 301, "resolve first") == {"value": u1}
    assert r.headers.get("Location") == u1, r.headers

    u1b = "https://www.example.org/first-updated"
    body = _json(s.http("PUT", "/" + id1, body={"url": u1b}, token=token),
                 200, "update first")
    assert body == {"id": id1, "value": u1b}, body
    r = s.http("GET", "/" + id1)
    assert _json(r, 301, "resolve updated") == {"value": u1b}
    assert r.headers.get("Location") == u1b, r.headers

    r = s.http("DELETE", "/" + id2, token=token)
    assert r.status_code == 204, "delete second: %s" % _show(r)
    _json(s.http("GET", "/" + id2), 404, "resolve deleted")

    body = _json(s.http("GET", "/", token=token), 200, "list")
    assert body["items"] == [{"id": id1, "value": u1b}], body
    assert body["next"] is None, body

    body = _json(s.http("DELETE", "/", token=token), 404, "delete all")
    assert body.get("detail") == "not found" and body.get("deleted") == 1, \
        body
    _json(s.http("GET", "/" + id1), 404, "resolve after delete all")

    r = s.http("GET", "/", token=token)
    body = _json(r, 200, "list empty")
    assert body.get("value") is None, body
    assert b'"value"' not in r.content, _show(r)
    assert body["items"] == [], body
