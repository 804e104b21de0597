"""
End-to-end cases for a db_host that lists several database nodes
(docs/scaling.md), on the single-host stack: the list is checked
by `shortd -t`, and a worker whose first node does not answer serves
from the next one.  The cluster itself (Galera, nodes dying under
load) is regress/cluster/, run by `make check-cluster`.
"""

import stack


def _show(r):
    return "%d %r" % (r.status_code, r.content[:300])


def test_db_host_list_checked(s):
    """shortd -t takes a list of nodes and refuses a malformed one,
    naming db_host."""
    for good in ("db1:3306,db2:3307,db3", " db1:3306 , [::1]:3308 ",
                 "[::1]", "localhost"):
        p = s.shortd_check(overrides={"db_host": good})
        assert p.returncode == 0, "shortd -t refused db_host %r:\n%s%s" % (
            good, p.stdout, p.stderr)
    for bad in ("db1:3306,", ",db1", "db1,,db2", "db1:", "db1:0",
                "db1:65536", "db1:x", "[::1", "[::1]3306"):
        p = s.shortd_check(overrides={"db_host": bad})
        out = p.stdout + p.stderr
        assert p.returncode != 0, "shortd -t accepted db_host %r" % bad
        assert "db_host" in out, "shortd -t on db_host %r: %s" % (bad, out)


def test_first_node_down_next_one_serves(s):
    """db_host = a port where nothing listens, then the real server:
    every request is served, and each worker says where it went."""
    dead = stack.free_port()
    user, pw, token = s.new_user("dbn")
    before = len(s.shortd_log())
    try:
        s.restart_shortd({"db_host": "127.0.0.1:%d,localhost" % dead})
        i = s.shorten(token, "https://example.org/nodes")
        r = s.http("GET", "/" + i)
        assert r.status_code == 301, "GET /%s: %s" % (i, _show(r))
        assert s.login(user, pw)
        u2, pw2, tok2 = s.new_user("dbn2")
        r = s.http("GET", "/", token=tok2)
        assert r.status_code == 200, "GET /: " + _show(r)
        log = s.shortd_log()[before:]
        assert "connect to 127.0.0.1:%d" % dead in log, \
            "no failed connect to the dead node in the log:\n" + log[-2000:]
        assert "(node 2 of 2)" in log, \
            "no worker says it connected to node 2:\n" + log[-2000:]
    finally:
        s.restart_shortd()
