"""
Cluster cases (make check-cluster): what several shortd hosts on one
Galera cluster promise beyond the single-host contract.  Each
test_*(c) gets the running Cluster (regress/cluster/cluster.py):
instance A (c.instances[0]) starts on node 1, instance B on node 2;
each instance also has its own nginx (inst.url), a path to it alone.
"""

import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests


def _show(r):
    return "%d %r %r" % (r.status_code,
                         {k: v for k, v in r.headers.items()
                          if k in ("Location", "Retry-After",
                                   "X-Error-Source")},
                         r.content[:300])


def _req(base, method, path, body=None, token=None, timeout=30):
    h = {}
    if token is not None:
        h["Authorization"] = token
    data = json.dumps(body).encode() if body is not None else None
    return requests.request(method, base + path, data=data, headers=h,
                            allow_redirects=False, timeout=timeout)


def _user(base, c, prefix):
    user, pw = c.unique(prefix), "pw-" + c.unique("p")
    r = _req(base, "POST", "/users", {"username": user, "password": pw})
    assert r.status_code == 201, "register: " + _show(r)
    r = _req(base, "POST", "/users/login", {"username": user,
                                            "password": pw})
    assert r.status_code == 200, "login: " + _show(r)
    return user, pw, r.json()["token"]


def _shortd_processes(node):
    """Connections of user shortd on a node."""
    return node.sql("SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                    "WHERE USER = 'shortd'")[0][0]


# ------------------------------------------------------------------

def test_each_instance_starts_on_its_first_node(c):
    """A's workers hold their connections on node 1, B's on node 2,
    none on node 3, and both say so in their logs."""
    g = c.galera
    want = {1: 4, 2: 4, 3: 0}       # 2 auth + 2 shortener workers each
    deadline = time.time() + 10
    while True:
        got = {n: _shortd_processes(g.node(n)) for n in want}
        if got == want or time.time() > deadline:
            break
        time.sleep(0.2)
    assert got == want, "shortd connections per node %r, want %r" % (
        got, want)
    for inst, n in zip(c.instances, (1, 2)):
        line = "connected to %s (node 1 of 3)" % g.node(n).address
        assert line in inst.shortd_log(), \
            "instance %s's log lacks %r" % (inst.name, line)


def test_link_created_on_a_redirects_on_b(c):
    """Galera commits are synchronous and shortd reads causally: what
    one host wrote, the other serves on the very next request."""
    a, b = c.instances[0].url, c.instances[1].url
    user, pw, tok = _user(a, c, "ab")
    for k in range(40):
        url = "https://example.org/ab/%d" % k
        r = _req(a, "POST", "/", {"value": url}, token=tok)
        assert r.status_code == 201, "POST / on A: " + _show(r)
        i = r.json()["id"]
        r = _req(b, "GET", "/" + i)
        assert r.status_code == 301 and r.headers.get("Location") == url, \
            "GET /%s on B right after A created it: %s" % (i, _show(r))
        url2 = url + "/v2"
        r = _req(b, "PUT", "/" + i, {"url": url2}, token=tok)
        assert r.status_code == 200, "PUT on B: " + _show(r)
        r = _req(a, "GET", "/" + i)
        assert r.status_code == 301 and r.headers.get("Location") == url2, \
            "GET /%s on A right after B updated it: %s" % (i, _show(r))
        if k % 4 == 0:
            r = _req(a, "DELETE", "/" + i, token=tok)
            assert r.status_code == 204, "DELETE on A: " + _show(r)
            r = _req(b, "GET", "/" + i)
            assert r.status_code == 404, \
                "GET /%s on B right after A deleted it: %s" % (i, _show(r))
    r = _req(b, "GET", "/?limit=1000", token=tok)
    assert r.status_code == 200 and len(r.json()["items"]) == 30, \
        "GET / on B: " + _show(r)


def test_change_on_a_seen_on_b_that_served_the_link(c):
    """B has just served a link many times when A changes it: B's next
    answers are A's.  A host's redirect cache would not see A's change
    (it is off on every host, see cluster.py)."""
    a, b = c.instances[0].url, c.instances[1].url
    user, pw, tok = _user(a, c, "warm")
    url = "https://example.org/warm/%s" % user
    r = _req(a, "POST", "/", {"value": url}, token=tok)
    assert r.status_code == 201, "POST / on A: " + _show(r)
    i = r.json()["id"]
    for k in range(3):
        for _ in range(20):
            r = _req(b, "GET", "/" + i)
            assert r.status_code == 301 and \
                r.headers.get("Location") == url, \
                "GET /%s on B: %s" % (i, _show(r))
        new = url + "/v%d" % k
        r = _req(a, "PUT", "/" + i, {"url": new}, token=tok)
        assert r.status_code == 200, "PUT on A: " + _show(r)
        for n in range(20):
            r = _req(b, "GET", "/" + i)
            assert r.status_code == 301 and \
                r.headers.get("Location") == new, \
                "GET /%s on B, %d after A changed it: %s" % (i, n + 1,
                                                            _show(r))
        url = new
    r = _req(a, "DELETE", "/" + i, token=tok)
    assert r.status_code == 204, "DELETE on A: " + _show(r)
    r = _req(b, "GET", "/" + i)
    assert r.status_code == 404, \
        "GET /%s on B right after A deleted it: %s" % (i, _show(r))


def test_password_changed_on_b_holds_on_a(c):
    a, b = c.instances[0].url, c.instances[1].url
    user, pw, tok = _user(b, c, "pwab")
    for k in range(6):
        new = "new-%d-%s" % (k, c.unique("x"))
        r = _req(b, "PUT", "/users", {"username": user, "password": pw,
                                      "new_password": new})
        assert r.status_code == 200, "PUT /users on B: " + _show(r)
        r = _req(a, "POST", "/users/login", {"username": user,
                                             "password": new})
        assert r.status_code == 200, \
            "login on A with the password just set on B: " + _show(r)
        r = _req(a, "POST", "/users/login", {"username": user,
                                             "password": pw})
        assert r.status_code == 403, \
            "login on A with the password B just replaced: " + _show(r)
        pw = new
        a, b = b, a


def _set_retry_autocommit(c, v):
    for node in c.galera.nodes:
        node.sql("SET GLOBAL wsrep_retry_autocommit = %d" % v)


def test_certification_conflicts_are_retried(c):
    """Two hosts updating one link through two nodes at once conflict
    at certification (1213).  With the server's own retry switched off
    the workers see it: they retry a few times, then answer 503, never
    500, and every node ends with the same value, one that was sent."""
    a, b = c.instances[0], c.instances[1]
    user, pw, tok = _user(c.url, c, "cert")
    r = _req(a.url, "POST", "/", {"value": "https://example.org/c/0"},
             token=tok)
    assert r.status_code == 201, _show(r)
    i = r.json()["id"]
    logs_before = [len(x.shortd_log()) for x in (a, b)]
    sent = {"https://example.org/c/0"}
    lock = threading.Lock()
    codes = {}
    stop = threading.Event()

    def put(base, tag):
        s = requests.Session()
        n = 0
        while not stop.is_set() and n < 400:
            n += 1
            url = "https://example.org/c/%s/%d" % (tag, n)
            with lock:
                sent.add(url)
            r = s.put(base + "/" + i, data=json.dumps({"url": url}),
                      headers={"Authorization": tok}, timeout=30,
                      allow_redirects=False)
            with lock:
                codes[r.status_code] = codes.get(r.status_code, 0) + 1
            if r.status_code not in (200, 503):
                return "PUT on %s: %s" % (tag, _show(r))
            if r.status_code == 503:
                body = r.json()
                if body.get("detail") != "unavailable":
                    return "PUT on %s: 503 %s" % (tag, _show(r))
        return None

    def retries():
        n = 0
        for x, before in zip((a, b), logs_before):
            n += len(re.findall(r"url update: .*[Dd]eadlock.*retrying",
                                x.shortd_log()[before:]))
        return n

    _set_retry_autocommit(c, 0)
    try:
        with ThreadPoolExecutor(4) as ex:
            futs = [ex.submit(put, a.url, "a1"), ex.submit(put, b.url, "b1"),
                    ex.submit(put, a.url, "a2"), ex.submit(put, b.url, "b2")]
            deadline = time.time() + 60
            while time.time() < deadline and not all(f.done()
                                                      for f in futs):
                if retries() >= 5:
                    break
                time.sleep(0.2)
            stop.set()
            errors = [f.result() for f in futs]
    finally:
        stop.set()
        _set_retry_autocommit(c, 1)
    errors = [e for e in errors if e]
    assert not errors, "\n".join(errors)
    n = retries()
    print("#   certification conflicts: %d retries logged, answers %r" % (
        n, dict(sorted(codes.items()))), flush=True)
    assert n >= 1, "no 1213 was retried in %d conflicting updates (%r)" % (
        sum(codes.values()), codes)
    values = set()
    for node in (1, 2, 3):
        rows = c.node_sql(node, "SELECT value FROM urls WHERE id = %s", (i,))
        assert len(rows) == 1, "node %d: %r" % (node, rows)
        values.add(rows[0][0])
    assert len(values) == 1, "nodes disagree: %r" % values
    assert values <= sent, "a value never sent: %r" % values


def test_key_revoked_on_b_refused_on_a(c):
    """API keys are read from the database on every request, never
    cached: a key revoked through one host is refused by the very next
    request on the other, and so are an account's token and key once
    the account is deleted through the other host."""
    a, b = c.instances[0].url, c.instances[1].url
    user, pw, tok = _user(a, c, "key")
    r = _req(a, "POST", "/users/keys", {"name": "bot"}, token=tok)
    assert r.status_code == 201, "POST /users/keys on A: " + _show(r)
    key = r.json()
    for base in (a, b, a, b):
        r = _req(base, "GET", "/", token=key["key"])
        assert r.status_code == 200, "the key on %s: %s" % (base, _show(r))
    r = _req(b, "DELETE", "/users/keys/" + key["id"], token=tok)
    assert r.status_code == 204, "revoke on B: " + _show(r)
    for base in (a, b):
        r = _req(base, "GET", "/", token=key["key"])
        assert r.status_code == 403 and \
            r.json()["detail"] == "forbidden", \
            "the revoked key on %s: %s" % (base, _show(r))
    # The account, deleted through B: A refuses its token and key.
    r = _req(a, "POST", "/users/keys", {"name": "bot2"}, token=tok)
    assert r.status_code == 201, _show(r)
    key2 = r.json()["key"]
    assert _req(a, "GET", "/", token=key2).status_code == 200
    r = _req(b, "DELETE", "/users", {"password": pw}, token=tok)
    assert r.status_code == 204, "DELETE /users on B: " + _show(r)
    for t in (tok, key2):
        r = _req(a, "GET", "/", token=t)
        assert r.status_code == 403, "after the deletion on A: " + _show(r)
