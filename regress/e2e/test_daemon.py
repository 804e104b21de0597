"""
End-to-end cases for the daemon itself (CONTRACT.md sections 1, 2
"Always" and 4): workers that die are replaced, TERM lets in-flight
requests finish, HUP replaces workers without dropping a request, the
database going away gives 503 and coming back needs no restart, `-t`
checks a configuration, SHORTD_* variables override the file, USR1
reopens the log.

Each test_*(s) gets the shared running stack (regress/stack.py) and
leaves it as it found it: the cases that stop or reconfigure something
restore it in a finally block.
"""

import json
import os
import signal
import threading
import time

import stack

NGINX_ERROR = "X-Error-Source"


def _show(r):
    return "%d %s %r" % (r.status_code,
                         {k: v for k, v in r.headers.items()
                          if k in ("Location", "Retry-After", NGINX_ERROR,
                                   "Content-Type")},
                         r.content[:300])


def _link(s, prefix="d"):
    """A fresh user with one link -> (user, pw, token, id, url)."""
    user, pw, token = s.new_user(prefix)
    url = "https://example.org/%s" % user
    return user, pw, token, s.shorten(token, url), url


def _redirects(s, i, url, status=301, what="GET"):
    r = s.http("GET", "/" + i)
    assert r.status_code == status, "%s /%s: %s" % (what, i, _show(r))
    assert r.headers.get("Location") == url, "%s /%s: %s" % (what, i,
                                                            _show(r))


def _wait(pred, timeout, step=0.05):
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v or time.time() > deadline:
            return v
        time.sleep(step)


def _all_workers(s):
    return set(s.workers("auth")) | set(s.workers("shortener"))


# ------------------------------------------------------------------
# Workers
# ------------------------------------------------------------------

def test_pools_have_named_workers(s):
    auth = s.wait_workers("auth", 1)
    short = s.wait_workers("shortener", 1)
    kids = stack.children_of(s.master_pid)
    names = [(k, stack.proc_comm(k)) for k in kids]
    assert auth, "no auth worker (comm shortd-auth) under master %d: %r" % (
        s.master_pid, names)
    assert short, "no shortener worker (comm shortd-short) under %d: %r" % (
        s.master_pid, names)
    assert not set(auth) & set(short)


def test_killed_worker_is_replaced(s):
    user, pw, token, i, url = _link(s)
    for pool in ("auth", "shortener"):
        before = s.wait_workers(pool, 1)
        assert before, "no %s workers" % pool
        victim = before[0]
        os.kill(victim, signal.SIGKILL)

        def replaced():
            now = s.workers(pool)
            return victim not in now and len(now) >= len(before) and now

        now = _wait(replaced, 5)
        assert now, "%s worker %d killed: after 5 s workers are %r " \
            "(before %r)" % (pool, victim, s.workers(pool), before)
        assert s.shortd_running(), "the master died"
    # The replacements serve.
    _redirects(s, i, url, what="GET after replacing workers")
    u2 = s.unique("dk")
    s.register(u2, "pw")
    assert s.login(u2, "pw")


def test_killed_workers_again_and_again(s):
    """Several deaths in a row: the master keeps the pool filled (with
    back-off at worst a few seconds) and the service comes back."""
    user, pw, token, i, url = _link(s)
    for _ in range(3):
        for pid in s.workers("shortener"):
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    got = s.wait_workers("shortener", 1, timeout=15)
    assert got, "shortener pool empty 15 s after its workers were killed"

    def serves():
        try:
            r = s.http("GET", "/" + i, timeout=10)
        except Exception:
            return False
        return r.status_code == 301
    assert _wait(serves, 15, 0.2), "GET /%s not 301 within 15 s: %s" % (
        i, _show(s.http("GET", "/" + i)))


# ------------------------------------------------------------------
# Signals
# ------------------------------------------------------------------

def test_term_lets_in_flight_request_finish(s):
    user, pw, token, i, url = _link(s, "dt")
    new = url + "/changed"
    lock = s.db_connect(autocommit=False)
    result = {}

    def put():
        try:
            result["r"] = s.http("PUT", "/" + i, {"url": new}, token=token,
                                 timeout=60)
        except Exception as e:
            result["e"] = e

    t = threading.Thread(target=put, daemon=True)
    try:
        with lock.cursor() as c:
            c.execute("BEGIN")
            c.execute("SELECT value FROM urls WHERE id = %s FOR UPDATE", (i,))
            assert c.fetchall(), "link %s not in the database" % i
        t.start()
        time.sleep(0.5)
        assert t.is_alive(), "PUT did not wait for the row lock: %s" % (
            _show(result["r"]) if "r" in result else result)
        master = s.master_pid
        s.signal_shortd(signal.SIGTERM)
        time.sleep(0.5)
        alive = s.shortd_running()
        lock.commit()
        t.join(30)
        assert not t.is_alive(), "PUT still running 30 s after COMMIT"
        assert "e" not in result, "PUT failed during TERM: %r" % result["e"]
        r = result["r"]
        assert r.status_code == 200, "PUT during TERM: %s" % _show(r)
        assert r.json() == {"id": i, "value": new}, _show(r)
        rc = s.wait_shortd(20)
        assert rc is not None, "master %d still running 20 s after TERM" % (
            master)
        assert rc == 0, "master exited with %s after TERM (want 0)" % rc
        assert alive, "master exited before its in-flight request finished"
        rows = s.sql("SELECT value FROM urls WHERE id = %s", (i,))
        assert rows and rows[0][0] == new, rows
    finally:
        try:
            lock.rollback()
            lock.close()
        except Exception:
            pass
        if t.ident:
            t.join(5)
        s.restart_shortd()
    _redirects(s, i, new, what="GET after restart")


def test_int_is_a_graceful_stop(s):
    user, pw, token, i, url = _link(s, "di")
    try:
        s.signal_shortd(signal.SIGINT)
        rc = s.wait_shortd(20)
        assert rc == 0, "master after INT: exit %r (want 0)" % rc
    finally:
        s.restart_shortd()
    _redirects(s, i, url, what="GET after restart")


def test_hup_drops_no_request(s):
    user, pw, token, i, url = _link(s, "dh")
    master = s.master_pid
    before = _all_workers(s)
    stop = threading.Event()
    failures, counts = [], {"get": 0, "post": 0}

    def getter():
        while not stop.is_set():
            try:
                r = s.http("GET", "/" + i, timeout=30)
                if r.status_code != 301 or r.headers.get("Location") != url:
                    failures.append("GET /%s: %s" % (i, _show(r)))
                counts["get"] += 1
            except Exception as e:
                failures.append("GET /%s: %r" % (i, e))

    def poster():
        while not stop.is_set():
            u = s.unique("dhu")
            try:
                r = s.http("POST", "/users", {"username": u, "password": "p"},
                           timeout=30)
                if r.status_code != 201:
                    failures.append("POST /users: %s" % _show(r))
                counts["post"] += 1
            except Exception as e:
                failures.append("POST /users: %r" % (e,))

    threads = [threading.Thread(target=f, daemon=True)
               for f in (getter, poster)]
    for t in threads:
        t.start()
    try:
        for _ in range(3):
            time.sleep(0.5)
            s.signal_shortd(signal.SIGHUP)
            time.sleep(0.5)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(40)
    assert not failures, "%d of %d requests failed across HUP:\n%s" % (
        len(failures), counts["get"] + counts["post"] + len(failures),
        "\n".join(failures[:10]))
    assert counts["get"] > 0 and counts["post"] > 0, counts
    print("#   HUP x3 under load: %d GET, %d POST /users" % (
        counts["get"], counts["post"]))
    assert s.shortd_running() and s.master_pid == master, \
        "the master did not survive HUP"
    # HUP replaces the workers (with the configuration re-read).
    after = _wait(lambda: (lambda w: w if w and not w & before else None)(
        _all_workers(s)), 10)
    assert after, "workers not replaced after HUP: before %r, now %r" % (
        sorted(before), sorted(_all_workers(s)))
    _redirects(s, i, url, what="GET after HUP")


def test_hup_applies_new_configuration(s):
    user, pw, token, i, url = _link(s, "dhc")
    try:
        with open(s.conf_path, "w") as f:
            f.write(s.conf_text({"redirect_status": "307"}))
        s.signal_shortd(signal.SIGHUP)

        def applied():
            r = s.http("GET", "/" + i)
            return r.status_code == 307
        assert _wait(applied, 10, 0.2), \
            "redirect_status 307 not in force 10 s after HUP: %s" % (
                _show(s.http("GET", "/" + i)))
    finally:
        s.restart_shortd()
    _redirects(s, i, url, what="GET after restoring the configuration")


def test_usr1_reopens_log_file(s):
    log = os.path.join(s.root, "shortd-file.log")
    moved = log + ".1"
    try:
        s.restart_shortd({"log_file": log})
        assert _wait(lambda: os.path.exists(log), 5), \
            "log_file %s not created" % log
        os.rename(log, moved)
        s.signal_shortd(signal.SIGUSR1)
        assert _wait(lambda: os.path.exists(log), 5), \
            "log_file not reopened 5 s after USR1"
        assert s.shortd_running(), "master died on USR1"
        user, pw, token, i, url = _link(s, "du")
        _redirects(s, i, url, what="GET after USR1")
    finally:
        s.restart_shortd()
        for p in (log, moved):
            try:
                os.unlink(p)
            except OSError:
                pass


# ------------------------------------------------------------------
# The database going away
# ------------------------------------------------------------------

def _unavailable(r, what):
    assert r.status_code == 503, "%s with the database down: %s" % (
        what, _show(r))
    assert NGINX_ERROR not in r.headers, \
        "%s: the 503 came from nginx (shortd not reachable?): %s" % (
            what, _show(r))
    ra = r.headers.get("Retry-After", "")
    assert ra.isdigit(), "%s: Retry-After %r" % (what, ra)
    if what.startswith("HEAD"):
        assert r.content == b"", "%s: a body: %s" % (what, _show(r))
        return
    assert r.headers.get("Content-Type", "").startswith("application/json"), \
        "%s: %s" % (what, _show(r))
    body = json.loads(r.content)
    assert body.get("detail") == "unavailable", "%s: %s" % (what, _show(r))
    assert isinstance(body.get("message"), str), "%s: %s" % (what, _show(r))


def test_database_down_gives_503_and_recovers(s):
    user, pw, token, i, url = _link(s, "db")
    workers = _all_workers(s)
    try:
        s.stop_db()
        t0 = time.time()
        _unavailable(s.http("GET", "/" + i), "GET /%s" % i)
        _unavailable(s.http("HEAD", "/" + i), "HEAD /%s" % i)
        _unavailable(s.http("POST", "/users",
                            {"username": s.unique("dbx"), "password": "p"}),
                     "POST /users")
        _unavailable(s.http("POST", "/users/login",
                            {"username": user, "password": pw}),
                     "POST /users/login")
        _unavailable(s.http("POST", "/", {"value": url + "/2"},
                            token=token), "POST /")
        _unavailable(s.http("GET", "/", token=token), "GET /")
        took = time.time() - t0
        assert took < 30, "six requests with the database down took %.1fs" % (
            took)
        assert s.shortd_running(), "master died with the database down"
        assert _all_workers(s) == workers, \
            "workers changed with the database down (crashed?): %r -> %r" % (
                sorted(workers), sorted(_all_workers(s)))
        # A token still verifies (locally) and a bad one is refused
        # first, database or not.
        r = s.http("POST", "/", {"value": url}, token="not-a-token")
        assert r.status_code == 403, "bad token, database down: %s" % (
            _show(r))
    finally:
        s.start_db()

    state = {}

    def back():
        try:
            g = s.http("GET", "/" + i, timeout=10)
            p = s.http("POST", "/users", {"username": s.unique("dbb"),
                                          "password": "p"}, timeout=10)
        except Exception as e:
            state["last"] = repr(e)
            return False
        state["last"] = "GET %s; POST %s" % (_show(g), _show(p))
        return g.status_code == 301 and p.status_code == 201
    assert _wait(back, 10, 0.25), \
        "not recovered 10 s after MariaDB came back: %s" % state.get("last")
    _redirects(s, i, url, what="GET after the database came back")
    assert s.login(user, pw)
    assert s.shorten(token, url + "/3")


def test_database_down_at_start(s):
    """shortd started while the database is down: it starts (or waits),
    answers 503, and serves once the database is back."""
    user, pw, token, i, url = _link(s, "dbs")
    try:
        s.stop_shortd()
        s.stop_db()
        s.start_shortd()
        _unavailable(s.http("GET", "/" + i), "GET /%s" % i)
    finally:
        s.start_db()
        if not s.shortd_running():
            s.restart_shortd()

    def back():
        return s.http("GET", "/" + i, timeout=10).status_code == 301
    assert _wait(back, 10, 0.25), "not serving 10 s after MariaDB: %s" % (
        _show(s.http("GET", "/" + i)))


# ------------------------------------------------------------------
# Configuration
# ------------------------------------------------------------------

def _check_fails(s, what, key, **kw):
    """shortd -t must refuse, with a message naming key (or the line)."""
    p = s.shortd_check(**kw)
    out = p.stdout + p.stderr
    assert p.returncode != 0, "shortd -t accepted %s:\n%s" % (what, out)
    assert key.lower() in out.lower(), \
        "shortd -t on %s: the message does not name %r:\n%s" % (
            what, key, out)


def test_config_check(s):
    p = s.shortd_check()
    assert p.returncode == 0, "shortd -t on the running configuration: " \
        "exit %d\n%s%s" % (p.returncode, p.stdout, p.stderr)
    _check_fails(s, "an unknown key", "no_such_key",
                 text=s.conf_text() + "no_such_key = 1\n")
    _check_fails(s, "redirect_status = 305", "redirect_status",
                 overrides={"redirect_status": "305"})
    _check_fails(s, "auth_workers = many", "auth_workers",
                 overrides={"auth_workers": "many"})
    text = s.conf_text()
    _check_fails(s, "a line without '='",
                 ":%d" % (len(text.splitlines()) + 1),
                 text=text + "just some words\n")
    _check_fails(s, "SHORTD_REDIRECT_STATUS=999", "redirect_status",
                 env={"SHORTD_REDIRECT_STATUS": "999"})
    p = s.shortd_check(env={"SHORTD_REDIRECT_STATUS": "308"})
    assert p.returncode == 0, "SHORTD_REDIRECT_STATUS=308: %s%s" % (
        p.stdout, p.stderr)


def test_environment_overrides_file(s):
    user, pw, token, i, url = _link(s, "de")
    try:
        s.restart_shortd(env={"SHORTD_REDIRECT_STATUS": "302"})
        assert "redirect_status = 301" in open(s.conf_path).read()
        _redirects(s, i, url, 302, "GET with SHORTD_REDIRECT_STATUS=302")
    finally:
        s.restart_shortd()
    _redirects(s, i, url, 301, "GET after dropping the variable")


def test_refuses_to_start_without_secret(s):
    missing = os.path.join(s.root, "no-such-secret")
    p = s.shortd_check(overrides={"jwt_secret_file": missing})
    out = p.stdout + p.stderr
    assert p.returncode != 0, "shortd -t without a JWT secret passed:\n" + out
    short = os.path.join(s.root, "short.secret")
    with open(short, "w") as f:
        f.write("tooshort")
    try:
        p = s.shortd_check(overrides={"jwt_secret_file": short})
        assert p.returncode != 0, \
            "shortd -t with an 8-byte JWT secret passed:\n%s%s" % (
                p.stdout, p.stderr)
    finally:
        os.unlink(short)


def test_term_during_startup_wait(s):
    """TERM while the start-up schema check waits on a database that
    never answers stops shortd at once (as PID 1 in a container an
    uncaught TERM would be ignored until docker's kill timeout)."""
    import socket
    import subprocess

    mute = socket.socket()
    mute.bind(("127.0.0.1", 0))
    mute.listen(16)                   # accepts in the kernel, never greets
    port = mute.getsockname()[1]
    d = os.path.join(s.root, "startup-term")
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "shortd.conf")
    text = s.conf_text({
        "auth_listen": os.path.join(d, "a.sock"),
        "shortener_listen": os.path.join(d, "s.sock"),
        "status_listen": os.path.join(d, "st.sock"),
        "db_host": "127.0.0.1", "db_port": str(port), "db_socket": "",
        "db_connect_timeout": "20",
    })
    with open(conf, "w") as f:
        f.write(text)
    log = open(os.path.join(d, "shortd.log"), "wb")
    p = subprocess.Popen([s.shortd_path, "-f", "-c", conf],
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                         env=s.shortd_env())
    try:
        time.sleep(1.0)
        assert p.poll() is None, "shortd exited before TERM"
        t = time.time()
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=10)
        took = time.time() - t
        assert rc == 0, "exit status %r after TERM at start-up" % rc
        assert took < 5, "TERM at start-up took %.1fs (database wait " \
            "not interrupted)" % took
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        log.close()
        mute.close()
