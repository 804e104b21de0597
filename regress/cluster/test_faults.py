"""
Faults under a steady mixed load (make check-cluster).

A few client threads, each with its own account, keep creating links,
following them, updating them, listing them and logging in, through
the balancing nginx, while one part of the system is killed:

  - a Galera node (node 1, where instance A's workers are): A's workers
    move to another node; the node is then restarted and rejoins by
    IST;
  - shortd instance A, master and workers at once: nginx moves on to B;
    A is then started again.

What must hold: every request answered, and the only failures are the
requests in flight when the part died (at most one per client thread),
each a 502 or 503 with a JSON body, never a 500; every link answered
201 is afterwards on every node, with a value that was sent.  The
cost of each fault (failed requests, slowest answer) is printed.
"""

import json
import random
import re
import threading
import time

import requests

THREADS = 6
WARMUP = 2.0        # s of load before the fault


def _show(r):
    return "%d %r %r" % (r.status_code,
                         {k: v for k, v in r.headers.items()
                          if k in ("Location", "Retry-After",
                                   "X-Error-Source", "Content-Type")},
                         r.content[:200])


class Load:
    """THREADS clients looping over a mix of requests until stopped."""

    def __init__(self, c, tag):
        self.c = c
        self.tag = tag
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.results = []       # (t0, t1, what, status or None, detail)
        self.links = {}         # id -> set of values it may hold
        self.threads = []
        self.users = []
        for k in range(THREADS):
            user, pw, tok = c.new_user("load%s%d-" % (tag, k))
            self.users.append((user, pw, tok))

    def start(self):
        for k in range(THREADS):
            th = threading.Thread(target=self._client, args=(k,),
                                  daemon=True)
            th.start()
            self.threads.append(th)
        return self

    def stop(self):
        self.stop_ev.set()
        for th in self.threads:
            th.join(90)
        alive = [th for th in self.threads if th.is_alive()]
        assert not alive, "%d load threads still running" % len(alive)

    def _record(self, t0, what, r, detail=""):
        status = None if r is None else r.status_code
        with self.lock:
            self.results.append((t0, time.time(), what, status, detail))

    def _client(self, k):
        user, pw, tok = self.users[k]
        rnd = random.Random("%s-%d" % (self.tag, k))
        sess = requests.Session()
        base = self.c.url
        mine = {}               # id -> the value it must redirect to
        n = 0
        while not self.stop_ev.is_set() and n < 5000:
            n += 1
            op = rnd.random()
            if not mine or op < 0.35:
                what = "POST /"
                url = "https://example.org/%s/%d/%d" % (self.tag, k, n)
                body, method, path = {"value": url}, "POST", "/"
            elif op < 0.75:
                i = rnd.choice(list(mine))
                what, method, path, body = "GET /id", "GET", "/" + i, None
            elif op < 0.87:
                i = rnd.choice(list(mine))
                url = "https://example.org/%s/%d/%d/u" % (self.tag, k, n)
                what, method, path = "PUT /id", "PUT", "/" + i
                body = {"url": url}
                with self.lock:
                    self.links[i].add(url)  # may apply even if it fails
            elif op < 0.96:
                what, method, path, body = "GET /", "GET", "/?limit=5", None
            else:
                what, method, path = "login", "POST", "/users/login"
                body = {"username": user, "password": pw}
            t0 = time.time()
            try:
                r = sess.request(method, base + path,
                                 data=None if body is None else
                                 json.dumps(body),
                                 headers={"Authorization": tok},
                                 allow_redirects=False, timeout=60)
            except requests.RequestException as e:
                self._record(t0, what, None, repr(e))
                sess = requests.Session()
                continue
            detail = ""
            if what == "POST /" and r.status_code == 201:
                i = r.json()["id"]
                mine[i] = url
                with self.lock:
                    self.links[i] = {url}
            elif what == "PUT /id" and r.status_code == 200:
                mine[path[1:]] = url
            elif what == "PUT /id" and r.status_code in (502, 503):
                mine[path[1:]] = None   # either value, from now on
            elif what == "GET /id" and r.status_code == 301:
                want = mine[path[1:]]
                got = r.headers.get("Location")
                with self.lock:
                    ok = got in self.links[path[1:]]
                if (want is not None and got != want) or not ok:
                    detail = "redirects to %r, want %r" % (got, want)
            self._record(t0, what, r, detail or _failure(what, r))

    # ---------------------------------------------------------- verdict

    def failures(self):
        return [x for x in self.results if x[3] is None or x[4]]

    def check(self, name):
        """Assert the failures are few and of the allowed kind; print
        the fault's cost."""
        total = len(self.results)
        fails = self.failures()
        slow = max((t1 - t0 for t0, t1, *_ in self.results), default=0)
        by = {}
        for x in fails:
            k = "%s %s" % (x[2], x[3])
            by[k] = by.get(k, 0) + 1
        print("#   %s: %d requests, %d failed %r, slowest %.2fs" % (
            name, total, len(fails), by, slow), flush=True)
        assert total >= 10 * THREADS, "only %d requests under load" % total
        bad = [x for x in fails if x[3] not in (502, 503) or
               not x[4].startswith("unavailable")]
        assert not bad, "failures other than 502/503 JSON:\n" + "\n".join(
            "  %s -> %s %s" % (w, s, d) for _, _, w, s, d in bad[:20])
        assert len(fails) <= THREADS, \
            "%d failures, more than the %d requests in flight:\n%s" % (
                len(fails), THREADS, "\n".join(
                    "  %.2f %s -> %s %s" % (t0, w, s, d)
                    for t0, _, w, s, d in fails))


OK = {"POST /": (201,), "GET /id": (301,), "PUT /id": (200,),
      "GET /": (200,), "login": (200,)}


def _failure(what, r):
    """"" for an answer the operation wants, else what went wrong;
    "unavailable..." for a well-formed 502/503."""
    if r.status_code in OK[what]:
        return ""
    if r.status_code in (502, 503):
        try:
            body = json.loads(r.content)
        except ValueError:
            return "non-JSON %s" % _show(r)
        if body.get("detail") == "unavailable":
            return "unavailable " + _show(r)
    return "unexpected " + _show(r)


def _check_links(c, load):
    """Every link answered 201 is on every node, with a value sent."""
    ids = sorted(load.links)
    assert ids, "the load created no link"
    for n in range(1, len(c.galera.nodes) + 1):
        rows = {}
        for k in range(0, len(ids), 500):
            part = ids[k:k + 500]
            rows.update(c.node_sql(n, "SELECT id, value FROM urls WHERE id "
                                   "IN (%s)" % ",".join(["%s"] * len(part)),
                                   part))
        missing = [i for i in ids if i not in rows]
        assert not missing, "node %d lacks %d of %d links answered 201: " \
            "%r" % (n, len(missing), len(ids), missing[:10])
        wrong = [i for i in ids if rows[i] not in load.links[i]]
        assert not wrong, "node %d: values never sent for %r" % (
            n, [(i, rows[i]) for i in wrong[:5]])
    print("#   %d links answered 201, all on every node" % len(ids),
          flush=True)


def _addr_node(c, text_since):
    """The node numbers a shortd log excerpt says workers connected to."""
    out = []
    addr = {n.address: n.n for n in c.galera.nodes}
    for m in re.finditer(r"connected to (\S+) \(node \d of 3\)", text_since):
        out.append(addr.get(m.group(1)))
    return out


def test_galera_node_killed_and_rejoined(c):
    a = c.instances[0]
    g = c.galera
    load = Load(c, "gk")
    log_at = len(a.shortd_log())
    load.start()
    try:
        time.sleep(WARMUP)
        t_kill = time.time()
        g.kill(1)
        # A's workers were all on node 1: each moves when it next has
        # a request (the auth workers see few).
        time.sleep(6)
        since_kill = a.shortd_log()[log_at:]
        moved = _addr_node(c, since_kill)
        t_restart = time.time()
        how = g.restart(1)
        t_synced = time.time()
        time.sleep(2)
    finally:
        load.stop()
    print("#   node 1 killed; A's workers reconnected to nodes %r; node 1 "
          "back by %s in %.1fs (down %.1fs)" % (
              moved, how, t_synced - t_restart, t_synced - t_kill),
          flush=True)
    assert moved and all(n in (2, 3) for n in moved), \
        "A's workers did not move to nodes 2 and 3: %r" % moved
    # A worker that lost node 1 remembers it failed: it goes straight
    # to the next node instead of knocking at the dead one first.
    knocks = since_kill.count("connect to %s:" % g.node(1).address)
    assert knocks == 0, "A's workers tried dead node 1 %d times:\n%s" % (
        knocks, since_kill[-3000:])
    g.wait_size(3)
    load.check("Galera node killed and rejoined")
    _check_links(c, load)
    # The rejoined node serves: a link made now through node 1 alone.
    rows = c.node_sql(1, "SELECT COUNT(*) FROM urls")
    assert rows[0][0] >= len(load.links), rows


def test_shortd_instance_killed(c):
    a = c.instances[0]
    load = Load(c, "sk")
    load.start()
    try:
        time.sleep(WARMUP)
        c.kill_instance(0)
        time.sleep(4)
        a.start_shortd()
        time.sleep(3)
    finally:
        load.stop()
    load.check("shortd instance A killed, then restarted")
    _check_links(c, load)
    # A serves again (through its own nginx, A alone).
    i = sorted(load.links)[0]
    r = requests.get(a.url + "/" + i, allow_redirects=False, timeout=30)
    assert r.status_code == 301, "A after its restart: " + _show(r)
