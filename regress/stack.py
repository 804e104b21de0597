#!/usr/bin/python3
"""The whole shortd stack, run privately: MariaDB, shortd and nginx.

Used by the e2e tests (regress/run.py) and by `make run`:

    python3 regress/stack.py run [--port 5003] [--dir run] [--shortd ./shortd]

As a module:

    s = Stack(root_dir=None, shortd_path="build/shortd-asan")
    s.start()
    try:
        s.register("alice", "pw"); tok = s.login("alice", "pw")
        r = s.http("POST", "/", {"value": "https://example.org/"}, token=tok)
    finally:
        s.stop()

What a test gets from a started Stack `s` (all of it safe to call from
the main thread; http(), sql() and the helpers built on them also from
other threads):

  s.url                       "http://127.0.0.1:PORT"
  s.http(method, path, body=None, headers=None, token=None, raw=None,
         timeout=30)          requests.Response, redirects not followed;
                              checked against docs/openapi.yaml
                              (regress/openapi_check.py): a response
                              it does not describe raises
                              AssertionError and is noted in problems.
                              dict/list body -> JSON text, no Content-Type
                              unless given; str/bytes sent as they are;
                              raw= bytes/str sent verbatim (wins over body);
                              token= sets "Authorization: <token>".
  s.raw_request(bytes)        raw bytes to nginx's port -> raw reply bytes
  s.unique(prefix)            a fresh valid username
  s.register(user, pw)        POST /users, asserts 201
  s.login(user, pw)           POST /users/login, asserts 200 -> token
  s.new_user(prefix)          (user, pw, token) of a fresh account
  s.shorten(token, url)       POST /, asserts 201 -> id
  s.sql(query, args)          rows, as root on database shortd (autocommit)
  s.db_connect(**kw)          a new pymysql connection (root, shortd)
  s.lock_url(i)               a connection holding urls row i locked
  s.master_pid                pid of shortd's master
  s.workers(pool)             pids of pool "auth" or "shortener" workers
                              (or "status": the status process)
  s.wait_workers(pool, n)     until the pool has >= n workers -> pids
  s.signal_shortd(sig)        kill(master, sig)
  s.wait_shortd(timeout)      the master's exit status, or None if running
  s.stop_shortd()             TERM (KILL after 15 s) -> exit status
  s.start_shortd(overrides, env)
  s.restart_shortd(overrides=None, env=None)
                              stop, rewrite the config from the base
                              overrides plus these (not cumulative:
                              restart_shortd() goes back to the base),
                              start with extra environment, wait ready
  s.shortd_check(overrides=None, text=None, env=None)
                              `shortd -t -c FILE` -> CompletedProcess
  s.conf_text(overrides)      the shortd.conf a start would write
  s.stop_db(), s.start_db()   stop/start MariaDB (same datadir)
  s.jwt_secret                the secret shortd signs with (bytes)
  s.login_limit               (rate, burst) of nginx's limit on POST
                              /users/login; generous for the suite
                              (LOGIN_LIMIT_TESTS), change it and
                              restart nginx to test the limit
  s.shortd_log()              shortd's stderr so far (text)
  s.sanitizer_reports()       ASan/UBSan/LSan reports so far ("" if none)
  s.problems                  harness observations (orphaned workers...)
  s.log_files()               {name: path} of the logs worth keeping

Processes run in their own sessions, with PR_SET_PDEATHSIG so they go
away if the harness dies; stop() is idempotent and also runs at exit and
on SIGINT/SIGTERM.
"""

import argparse
import atexit
import ctypes
import glob
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pymysql
import requests

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONF_TEMPLATE = os.path.join(TOP, "etc", "shortd.conf")
# The User-Agent s.http() sends unless told otherwise: a browser's.
# python-requests' own is a script's, which visit analytics records
# as a bot and never counts (docs/analytics.md).
BROWSER_UA = ("Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 "
              "Firefox/121.0")
NGINX_TEMPLATE = os.path.join(TOP, "etc", "nginx-local.conf.in")
SCHEMA = os.path.join(TOP, "sql", "schema.sql")
WWW_ROOT = os.path.join(TOP, "www")

# sun_path is 108 bytes with the NUL; keep some room.
SUN_PATH_MAX = 100

POOL_COMM = {
    "auth": "shortd-auth",
    "shortener": "shortd-short",
    "short": "shortd-short",
    "status": "shortd-status",
}

# nginx's per-address limit on POST /users/login: the values an
# operator would run with (make run), and the suite's, far above what
# its cases do from 127.0.0.1 so that none of them meets a 429.
LOGIN_LIMIT_SHIPPED = ("10r/s", 20)
LOGIN_LIMIT_TESTS = ("1000r/s", 1000)

SANITIZER_RE = re.compile(
    r"ERROR: AddressSanitizer|runtime error:|LeakSanitizer|"
    r"ERROR: UndefinedBehaviorSanitizer")

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _child_setup():
    """In the child before exec: die (gracefully) with the harness."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def free_port(host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_open(host, port, timeout=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def listen_accepts(spec, timeout=0.5):
    """Does a shortd listen spec ("/path.sock" or "host:port") accept?"""
    try:
        if spec.startswith("/"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(timeout)
                s.connect(spec)
            return True
        host, _, port = spec.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        return port_open(host, int(port), timeout)
    except (OSError, ValueError):
        return False


def fastcgi_target(spec):
    return "unix:" + spec if spec.startswith("/") else spec


def conf_value(v):
    """A Python value as it is written in shortd.conf."""
    if v is True:
        return "yes"
    if v is False:
        return "no"
    if v is None:
        return ""
    v = str(v)
    if v and (v != v.strip() or "#" in v or " " in v or '"' in v):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return v


def render_conf(template_text, values):
    """The template with each key's value replaced; new keys appended."""
    out, seen = [], set()
    for line in template_text.splitlines():
        m = re.match(r"^\s*([A-Za-z0-9_]+)\s*=", line)
        if m and m.group(1) in values:
            key = m.group(1)
            seen.add(key)
            out.append(("%s = %s" % (key, conf_value(values[key]))).rstrip())
        else:
            out.append(line)
    extra = [k for k in values if k not in seen]
    if extra:
        out.append("")
        out.append("## Set by regress/stack.py")
        for k in extra:
            out.append(("%s = %s" % (k, conf_value(values[k]))).rstrip())
    return "\n".join(out) + "\n"


def template_values(template_text):
    vals = {}
    for line in template_text.splitlines():
        m = re.match(r'^\s*([A-Za-z0-9_]+)\s*=\s*(.*?)\s*$', line)
        if m:
            v = m.group(2)
            if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
                v = v[1:-1]
            vals[m.group(1)] = v
    return vals


def proc_comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


def proc_stat(pid):
    """(ppid, pgrp, state) of pid, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    rest = s[s.rindex(")") + 2:].split()
    return int(rest[1]), int(rest[2]), rest[0]


def children_of(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        pass
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_stat(int(d))
            if st and st[0] == pid:
                kids.append(int(d))
    return kids


def group_members(pgrp):
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_stat(int(d))
            if st and st[1] == pgrp and st[2] != "Z":
                pids.append(int(d))
    return pids


def tail(path, n=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


class StackError(RuntimeError):
    pass


class Stack:
    def __init__(self, root_dir=None, shortd_path=None, port=None,
                 conf_overrides=None, host="127.0.0.1", persistent=False,
                 nginx_max_body=None, verbose=False, login_limit=None):
        self.own_root = root_dir is None
        if root_dir is None:
            root_dir = tempfile.mkdtemp(prefix="shortd-")
        self.root = os.path.abspath(root_dir)
        os.makedirs(self.root, exist_ok=True)
        # nginx's workers run as nobody when we are root: they must be
        # able to reach the sockets.
        os.chmod(self.root, 0o755)
        self.shortd_path = os.path.abspath(
            shortd_path or os.path.join(TOP, "build", "shortd-asan"))
        self.host = host
        self.port = port or free_port(host)
        self.base_overrides = dict(conf_overrides or {})
        self.persistent = persistent
        self.nginx_max_body = nginx_max_body
        self.login_limit = login_limit or LOGIN_LIMIT_TESTS
        self.verbose = verbose
        self.problems = []
        self.openapi = self._openapi_checker()

        self.sock_dir = self.root
        if len(os.path.join(self.root, "db", "mysqld.sock")) > SUN_PATH_MAX:
            self.sock_dir = tempfile.mkdtemp(prefix="shortd-sock-")
            os.chmod(self.sock_dir, 0o755)
        self.db_dir = os.path.join(self.root, "db")
        self.datadir = os.path.join(self.db_dir, "data")
        self.db_sock = os.path.join(
            self.sock_dir, "mysqld.sock" if self.sock_dir != self.root
            else "db/mysqld.sock")
        self.db_pidfile = os.path.join(self.db_dir, "mysqld.pid")
        self.db_log = os.path.join(self.db_dir, "error.log")
        self.auth_sock = os.path.join(self.sock_dir, "auth.sock")
        self.shortener_sock = os.path.join(self.sock_dir, "shortener.sock")
        self.status_sock = os.path.join(self.sock_dir, "status.sock")
        self.conf_path = os.path.join(self.root, "shortd.conf")
        self.log_path = os.path.join(self.root, "shortd.log")
        self.secret_path = os.path.join(self.root, "jwt.secret")
        self.dbpw_path = os.path.join(self.root, "db.password")
        self.nginx_prefix = os.path.join(self.root, "nginx")
        self.nginx_conf = os.path.join(self.nginx_prefix, "nginx.conf")
        self.nginx_log = os.path.join(self.nginx_prefix, "error.log")

        self.db_proc = None
        self.shortd_proc = None
        self.nginx_proc = None
        self.shortd_exit = None
        self.current_overrides = {}
        self.current_env = {}
        self._started = False
        self._stopping = False
        self._interrupted = False
        self._old_handlers = {}
        self._unique = 0
        self._lock = threading.Lock()
        self.db_password = None

    # ------------------------------------------------------------ paths

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    base_url = url

    @property
    def jwt_secret(self):
        with open(self.secret_path, "rb") as f:
            return f.read()

    @property
    def master_pid(self):
        return self.shortd_proc.pid if self.shortd_proc else None

    def log_files(self):
        files = {
            "shortd.log": self.log_path,
            "shortd.conf": self.conf_path,
            "nginx-error.log": self.nginx_log,
            "nginx-access.log": os.path.join(self.nginx_prefix, "access.log"),
            "nginx-stderr.log": os.path.join(self.nginx_prefix, "stderr.log"),
            "mariadb-error.log": self.db_log,
        }
        for p in sorted(glob.glob(os.path.join(self.root, "asan*")) +
                        glob.glob(os.path.join(self.root, "ubsan*"))):
            files[os.path.basename(p)] = p
        return {k: v for k, v in files.items() if os.path.exists(v)}

    def say(self, msg):
        if self.verbose:
            print("stack: " + msg, file=sys.stderr, flush=True)

    # ------------------------------------------------------------ start/stop

    def start(self):
        if self._started:
            return self
        self._started = True
        atexit.register(self.stop)
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old_handlers[sig] = signal.signal(sig, self._on_signal)
        try:
            self._ensure_secrets()
            self.start_db()
            self._setup_db()
            self.start_shortd()
            self.start_nginx()
        except BaseException:
            self.stop()
            raise
        return self

    def _on_signal(self, signum, frame):
        if self._stopping:
            return
        # No test's finally block may start anything again.
        self._interrupted = True
        self.stop()
        raise SystemExit(128 + signum)

    def stop(self):
        """Stop everything that runs; safe to call more than once."""
        if self._stopping:
            return
        self._stopping = True
        try:
            try:
                self.stop_shortd()
            finally:
                try:
                    self.stop_nginx()
                finally:
                    self.stop_db()
        finally:
            for sig, h in self._old_handlers.items():
                try:
                    signal.signal(sig, h)
                except (ValueError, TypeError):
                    pass
            self._old_handlers = {}
            self._stopping = False
            self._started = False

    def cleanup(self):
        """Remove the directories this Stack created itself."""
        self.stop()
        if self.own_root and not self.persistent:
            shutil.rmtree(self.root, ignore_errors=True)
        if self.sock_dir != self.root:
            shutil.rmtree(self.sock_dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @staticmethod
    def _end(proc, first, wait, name):
        """Signal proc, wait; KILL if still there.  -> exit status."""
        if proc is None:
            return None
        if proc.poll() is None:
            try:
                proc.send_signal(first)
            except ProcessLookupError:
                pass
            try:
                proc.wait(wait)
            except subprocess.TimeoutExpired:
                print("stack: %s did not stop in %ds, killing" % (name, wait),
                      file=sys.stderr)
                proc.kill()
                proc.wait()
        return proc.returncode

    def _ensure_secrets(self):
        if not os.path.exists(self.secret_path):
            fd = os.open(self.secret_path,
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(48))
        if not os.path.exists(self.dbpw_path):
            fd = os.open(self.dbpw_path,
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(16))
        with open(self.dbpw_path) as f:
            self.db_password = f.read().strip()

    # ------------------------------------------------------------ MariaDB

    def _may_start(self, what):
        if self._interrupted:
            raise StackError("not starting %s: the stack was stopped by a "
                             "signal" % what)

    def start_db(self):
        self._may_start("MariaDB")
        if self.db_proc is not None and self.db_proc.poll() is None:
            return
        os.makedirs(self.db_dir, exist_ok=True)
        user = "root" if os.geteuid() == 0 else None
        if not os.path.isdir(os.path.join(self.datadir, "mysql")):
            self.say("initialising MariaDB in " + self.datadir)
            cmd = ["mariadb-install-db", "--no-defaults",
                   "--datadir=" + self.datadir,
                   "--auth-root-authentication-method=normal"]
            if user:
                cmd.append("--user=" + user)
            with open(os.path.join(self.db_dir, "install.log"), "w") as log:
                rc = subprocess.call(cmd, stdout=log, stderr=log)
            if rc != 0:
                raise StackError("mariadb-install-db failed:\n" + tail(
                    os.path.join(self.db_dir, "install.log")))
        cmd = ["mariadbd", "--no-defaults", "--datadir=" + self.datadir,
               "--socket=" + self.db_sock, "--skip-networking",
               "--pid-file=" + self.db_pidfile,
               "--log-error=" + self.db_log,
               "--innodb-buffer-pool-size=64M"]
        if user:
            cmd.append("--user=" + user)
        self.say("starting MariaDB")
        self.db_proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
            preexec_fn=_child_setup)
        deadline = time.time() + 60
        while True:
            try:
                pymysql.connect(unix_socket=self.db_sock, user="root",
                                connect_timeout=2).close()
                return
            except pymysql.err.Error:
                pass
            if self.db_proc.poll() is not None:
                raise StackError("mariadbd exited with %s:\n%s" % (
                    self.db_proc.returncode, tail(self.db_log)))
            if time.time() > deadline:
                raise StackError("MariaDB not answering after 60 s:\n" +
                                 tail(self.db_log))
            time.sleep(0.1)

    def stop_db(self):
        rc = self._end(self.db_proc, signal.SIGTERM, 60, "mariadbd")
        self.db_proc = None
        return rc

    def db_running(self):
        return self.db_proc is not None and self.db_proc.poll() is None

    def _setup_db(self):
        conn = pymysql.connect(unix_socket=self.db_sock, user="root",
                               autocommit=True)
        try:
            with conn.cursor() as c:
                c.execute("CREATE DATABASE IF NOT EXISTS shortd "
                          "CHARACTER SET utf8mb4")
                c.execute("CREATE USER IF NOT EXISTS 'shortd'@'localhost' "
                          "IDENTIFIED BY %s", (self.db_password,))
                c.execute("ALTER USER 'shortd'@'localhost' IDENTIFIED BY %s",
                          (self.db_password,))
                c.execute("GRANT ALL ON shortd.* TO 'shortd'@'localhost'")
        finally:
            conn.close()
        if not os.path.exists(SCHEMA):
            print("stack: warning: %s is missing, no schema applied" % SCHEMA,
                  file=sys.stderr)
            return
        with open(SCHEMA, "rb") as f:
            r = subprocess.run(
                ["mariadb", "--no-defaults", "--socket=" + self.db_sock,
                 "-u", "root", "shortd"],
                stdin=f, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            raise StackError("applying %s failed:\n%s" % (
                SCHEMA, r.stdout.decode(errors="replace")))

    def db_connect(self, **kw):
        args = dict(unix_socket=self.db_sock, user="root", database="shortd",
                    charset="utf8mb4", autocommit=True, connect_timeout=5)
        args.update(kw)
        return pymysql.connect(**args)

    def lock_url(self, i):
        """A new connection holding urls row i locked (BEGIN; SELECT ...
        FOR UPDATE) until its rollback() or close()."""
        conn = self.db_connect(autocommit=False)
        with conn.cursor() as c:
            c.execute("BEGIN")
            c.execute("SELECT id FROM urls WHERE id = %s FOR UPDATE", (i,))
            assert len(c.fetchall()) == 1, "link %s not in the database" % i
        return conn

    def sql(self, query, args=None):
        conn = self.db_connect()
        try:
            with conn.cursor() as c:
                c.execute(query, args)
                return c.fetchall()
        finally:
            conn.close()

    # ------------------------------------------------------------ shortd

    def conf_values(self, overrides=None):
        vals = {
            "user": "",
            "group": "",
            "pid_file": "",
            "log_file": "",
            "auth_listen": self.auth_sock,
            "shortener_listen": self.shortener_sock,
            "status_listen": self.status_sock,
            # nginx's workers run as nobody when the harness is root.
            "listen_mode": "0666",
            "db_host": "localhost",
            "db_socket": self.db_sock,
            "db_user": "shortd",
            "db_password": self.db_password or "",
            "db_name": "shortd",
            "jwt_secret_file": self.secret_path,
        }
        vals.update(self.base_overrides)
        vals.update(overrides or {})
        return vals

    def conf_text(self, overrides=None):
        with open(CONF_TEMPLATE) as f:
            return render_conf(f.read(), self.conf_values(overrides))

    def effective_conf(self, overrides=None):
        """Every key's value (template defaults plus overrides), as str."""
        with open(CONF_TEMPLATE) as f:
            vals = template_values(f.read())
        for k, v in self.conf_values(overrides).items():
            vals[k] = conf_value(v).strip('"')
        return vals

    def shortd_env(self, env=None):
        e = {k: v for k, v in os.environ.items()
             if not k.startswith("SHORTD_")}
        e["ASAN_OPTIONS"] = ("detect_leaks=1:abort_on_error=0:log_path=" +
                             os.path.join(self.root, "asan"))
        e["UBSAN_OPTIONS"] = ("print_stacktrace=1:log_path=" +
                              os.path.join(self.root, "ubsan"))
        e.update(env or {})
        return e

    def start_shortd(self, overrides=None, env=None, wait=True):
        self._may_start("shortd")
        if self.shortd_proc is not None and self.shortd_proc.poll() is None:
            raise StackError("shortd is already running")
        self.current_overrides = dict(overrides or {})
        self.current_env = dict(env or {})
        with open(self.conf_path, "w") as f:
            f.write(self.conf_text(overrides))
        self.shortd_exit = None
        log = open(self.log_path, "ab")
        log.write(("---- stack: starting %s -f -c %s%s\n" % (
            self.shortd_path, self.conf_path,
            "".join(" %s=%s" % kv for kv in sorted(self.current_env.items()))
        )).encode())
        log.flush()
        try:
            self.shortd_proc = subprocess.Popen(
                [self.shortd_path, "-f", "-c", self.conf_path],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                env=self.shortd_env(env), cwd=self.root,
                start_new_session=True, preexec_fn=_child_setup)
        finally:
            log.close()
        if wait:
            self.wait_shortd_ready()

    def _listens(self, overrides=None):
        conf = self.effective_conf(overrides)
        specs = []
        for pool in ("auth", "shortener"):
            if conf.get(pool + "_enabled", "yes") not in ("no", "0", "false",
                                                           "off"):
                specs.append((pool, conf[pool + "_listen"]))
        return specs

    def wait_shortd_ready(self, timeout=30):
        specs = self._listens(self.current_overrides)
        deadline = time.time() + timeout
        while True:
            if self.shortd_proc.poll() is not None:
                self.shortd_exit = self.shortd_proc.returncode
                raise StackError("shortd exited with %s while starting:\n%s"
                                 % (self.shortd_exit, tail(self.log_path)))
            if all(listen_accepts(spec) for _, spec in specs):
                break
            if time.time() > deadline:
                raise StackError("shortd not listening after %ds:\n%s" % (
                    timeout, tail(self.log_path)))
            time.sleep(0.05)
        # Best effort: give the pools a moment to fork their workers.
        deadline = time.time() + 10
        while time.time() < deadline and self.shortd_proc.poll() is None:
            if all(self.workers(pool) for pool, _ in specs):
                break
            time.sleep(0.05)

    def wait_shortd(self, timeout=15):
        """Wait for the master to exit -> its status, or None."""
        if self.shortd_proc is None:
            return self.shortd_exit
        try:
            self.shortd_exit = self.shortd_proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._reap_group(self.shortd_proc.pid)
        return self.shortd_exit

    def _reap_group(self, pgrp):
        """After the master is gone, none of its workers may stay."""
        deadline = time.time() + 3
        left = group_members(pgrp)
        while left and time.time() < deadline:
            time.sleep(0.05)
            left = group_members(pgrp)
        if left:
            self.problems.append(
                "processes left after shortd's master exited: %s" %
                ", ".join("%d (%s)" % (p, proc_comm(p)) for p in left))
            try:
                os.killpg(pgrp, signal.SIGKILL)
            except OSError:
                pass

    def stop_shortd(self, timeout=15):
        """TERM the master, KILL after timeout -> exit status."""
        proc = self.shortd_proc
        if proc is None:
            return self.shortd_exit
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.problems.append("shortd ignored TERM for %ds" % timeout)
                proc.kill()
                proc.wait()
        self.shortd_exit = proc.returncode
        self._reap_group(proc.pid)
        self.shortd_proc = None
        return self.shortd_exit

    def restart_shortd(self, overrides=None, env=None):
        rc = self.stop_shortd()
        self.start_shortd(overrides, env)
        return rc

    def shortd_running(self):
        return self.shortd_proc is not None and self.shortd_proc.poll() is None

    def signal_shortd(self, sig):
        os.kill(self.master_pid, sig)

    def shortd_check(self, overrides=None, text=None, env=None, path=None):
        """`shortd -t -c FILE` on the config text given (or rendered from
        overrides) -> CompletedProcess with text stdout/stderr."""
        if text is None:
            text = self.conf_text(overrides)
        if path is None:
            fd, path = tempfile.mkstemp(prefix="check-", suffix=".conf",
                                        dir=self.root)
            os.close(fd)
        with open(path, "w") as f:
            f.write(text)
        return subprocess.run(
            [self.shortd_path, "-t", "-c", path], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=self.shortd_env(env), timeout=60)

    def workers(self, pool):
        """Pids of the master's children serving pool ("auth" or
        "shortener"), by the name each worker gives itself."""
        comm = POOL_COMM[pool]
        pid = self.master_pid
        if pid is None:
            return []
        return [c for c in children_of(pid) if proc_comm(c) == comm]

    def wait_workers(self, pool, n=1, timeout=10):
        deadline = time.time() + timeout
        while True:
            pids = self.workers(pool)
            if len(pids) >= n or time.time() > deadline:
                return pids
            time.sleep(0.05)

    def shortd_log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def sanitizer_reports(self):
        parts = []
        for p in sorted(glob.glob(os.path.join(self.root, "asan.*")) +
                        glob.glob(os.path.join(self.root, "ubsan.*"))):
            with open(p, errors="replace") as f:
                text = f.read()
            if text.strip():
                parts.append("==== %s\n%s" % (os.path.basename(p), text))
        # Reports that reach stderr (UBSan's do): the matching line and
        # the stack trace after it.
        log = self.shortd_log().splitlines()
        keep = set()
        for n, line in enumerate(log):
            if SANITIZER_RE.search(line):
                keep.update(range(n, min(n + 20, len(log))))
        if keep:
            parts.append("==== shortd.log\n" +
                         "\n".join(log[n] for n in sorted(keep)))
        return "\n".join(parts)

    # ------------------------------------------------------------ nginx

    def nginx_text(self):
        with open(NGINX_TEMPLATE) as f:
            text = f.read()
        conf = self.effective_conf()
        max_body = self.nginx_max_body or conf.get("max_body", "65536")
        listens = dict(self._listens())
        subst = {
            "@PREFIX@": self.nginx_prefix,
            "@LISTEN@": "%s:%d" % (self.host, self.port),
            "@AUTH_SOCK@": fastcgi_target(
                listens.get("auth", conf["auth_listen"])),
            "@SHORTENER_SOCK@": fastcgi_target(
                listens.get("shortener", conf["shortener_listen"])),
            "@MAX_BODY@": str(max_body),
            "@IMPORT_MAX@": str(conf.get("import_max_bytes", "67108864")),
            "@LOGIN_RATE@": str(self.login_limit[0]),
            "@LOGIN_BURST@": str(self.login_limit[1]),
            "@WWW_ROOT@": WWW_ROOT,
            "@STATUS_SOCK@": fastcgi_target(
                conf.get("status_listen") or self.status_sock),
        }
        for k, v in subst.items():
            text = text.replace(k, v)
        return text

    def start_nginx(self):
        self._may_start("nginx")
        if self.nginx_proc is not None and self.nginx_proc.poll() is None:
            return
        os.makedirs(self.nginx_prefix, exist_ok=True)
        with open(self.nginx_conf, "w") as f:
            f.write(self.nginx_text())
        if port_open(self.host, self.port):
            raise StackError("%s:%d is already in use" % (self.host,
                                                          self.port))
        err = open(os.path.join(self.nginx_prefix, "stderr.log"), "ab")
        try:
            self.nginx_proc = subprocess.Popen(
                ["nginx", "-c", self.nginx_conf, "-p",
                 self.nginx_prefix + "/", "-e", self.nginx_log,
                 "-g", "daemon off;"],
                stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                start_new_session=True, preexec_fn=_child_setup)
        finally:
            err.close()
        deadline = time.time() + 20
        while not port_open(self.host, self.port):
            if self.nginx_proc.poll() is not None:
                raise StackError("nginx exited with %s:\n%s%s" % (
                    self.nginx_proc.returncode,
                    tail(os.path.join(self.nginx_prefix, "stderr.log")),
                    tail(self.nginx_log)))
            if time.time() > deadline:
                raise StackError("nginx not answering after 20 s")
            time.sleep(0.05)

    def stop_nginx(self):
        proc = self.nginx_proc
        if proc is None:
            return None
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGQUIT)
                proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
            except ProcessLookupError:
                pass
        rc = self._end(proc, signal.SIGTERM, 5, "nginx")
        self.nginx_proc = None
        return rc

    # ------------------------------------------------------------ HTTP

    def _openapi_checker(self):
        """The response checker; a missing one is a problem (make deps
        installs what it needs), never a silent skip."""
        here = os.path.dirname(os.path.abspath(__file__))
        if here not in sys.path:
            sys.path.insert(0, here)
        try:
            import openapi_check
            return openapi_check.Checker()
        except Exception as e:   # ImportError, a broken document
            self.problems.append("responses not checked against "
                                 "docs/openapi.yaml: %r" % (e,))
            return None

    def _openapi_check(self, method, path, r):
        if self.openapi is None:
            return
        try:
            self.openapi.check_response(method, path, r)
        except AssertionError as e:
            with self._lock:
                self.problems.append(str(e))
            raise

    def http(self, method, path, body=None, headers=None, token=None,
             raw=None, timeout=30):
        h = dict(headers or {})
        if not any(k.lower() == "user-agent" for k in h):
            h["User-Agent"] = BROWSER_UA
        if token is not None:
            h["Authorization"] = token
        if raw is not None:
            data = raw.encode() if isinstance(raw, str) else raw
        elif body is None:
            data = None
        elif isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body
        r = requests.request(method, self.url + path, data=data,
                             headers=h, allow_redirects=False,
                             timeout=timeout)
        self._openapi_check(method, path, r)
        return r

    def raw_request(self, data, timeout=10):
        """Send raw bytes to nginx, read until it closes (or timeout)."""
        if isinstance(data, str):
            data = data.encode()
        out = b""
        with socket.create_connection((self.host, self.port),
                                      timeout=timeout) as s:
            s.sendall(data)
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    out += chunk
            except socket.timeout:
                pass
        return out

    def metric_totals(self):
        """GET /metrics -> {name: the sum of its samples over labels}."""
        r = self.http("GET", "/metrics", timeout=10)
        assert r.status_code == 200, "GET /metrics: %d %r" % (
            r.status_code, r.content[:200])
        out = {}
        for line in r.text.splitlines():
            m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{.*\})? (\S+)$',
                         line)
            if m and not line.startswith("#"):
                out[m.group(1)] = out.get(m.group(1), 0) + float(m.group(2))
        return out

    def unique(self, prefix="u"):
        with self._lock:
            self._unique += 1
            n = self._unique
        name = "%s%d-%d-%s" % (prefix, os.getpid() % 100000, n,
                               secrets.token_hex(3))
        return name[-64:]

    def register(self, user, pw):
        r = self.http("POST", "/users", {"username": user, "password": pw})
        assert r.status_code == 201, "register %s: %d %s" % (
            user, r.status_code, r.text)
        return r

    def login(self, user, pw):
        r = self.http("POST", "/users/login",
                      {"username": user, "password": pw})
        assert r.status_code == 200, "login %s: %d %s" % (
            user, r.status_code, r.text)
        return r.json()["token"]

    def new_user(self, prefix="u"):
        user = self.unique(prefix)
        pw = "pw-" + secrets.token_hex(8)
        self.register(user, pw)
        return user, pw, self.login(user, pw)

    def shorten(self, token, url):
        r = self.http("POST", "/", {"value": url}, token=token)
        assert r.status_code == 201, "shorten %s: %d %s" % (
            url, r.status_code, r.text)
        return r.json()["id"]


# ---------------------------------------------------------------- make run

def _follow(path, stop):
    """Echo what shortd writes to its log, for `make run`."""
    pos = os.path.getsize(path) if os.path.exists(path) else 0
    while not stop.is_set():
        try:
            with open(path, "rb") as f:
                f.seek(pos)
                chunk = f.read()
                pos += len(chunk)
            if chunk:
                sys.stderr.write(chunk.decode(errors="replace"))
                sys.stderr.flush()
        except OSError:
            pass
        stop.wait(0.2)


def cmd_run(args):
    shortd = os.path.abspath(args.shortd)
    if not os.access(shortd, os.X_OK):
        sys.exit("stack: %s is not built (run make)" % shortd)
    port_in_use = port_open(args.host, args.port)
    if port_in_use:
        sys.exit("stack: %s:%d is already in use" % (args.host, args.port))
    s = Stack(root_dir=args.dir, shortd_path=shortd, port=args.port,
              host=args.host, persistent=True, verbose=True,
              login_limit=LOGIN_LIMIT_SHIPPED)
    s.own_root = False
    stop = threading.Event()
    try:
        s.start()
    except StackError as e:
        sys.exit("stack: %s" % e)
    follower = threading.Thread(target=_follow, args=(s.log_path, stop),
                                daemon=True)
    u = s.url
    print("""
shortd is up
  HTTP (nginx)      %(u)s
  auth pool         %(auth)s
  shortener pool    %(short)s
  MariaDB socket    %(db)s   (mariadb --socket=%(db)s -u root shortd)
  files             %(root)s  (shortd.conf, shortd.log, nginx/, db/)

Try:
  J='Content-Type: application/json'
  curl -i -X POST %(u)s/users -H "$J" \\
      -d '{"username":"alice","password":"secret"}'
  TOKEN=$(curl -s -X POST %(u)s/users/login -H "$J" \\
      -d '{"username":"alice","password":"secret"}' |
      sed 's/.*"token":"\\([^"]*\\)".*/\\1/')
  curl -i -X POST %(u)s/ -H "$J" -H "Authorization: $TOKEN" \\
      -d '{"value":"https://example.org/"}'
  curl -i %(u)s/ID            # ID: the "id" of the answer above
  curl -s %(u)s/ -H "Authorization: $TOKEN"

Ctrl-C stops everything.  shortd's log follows:
""" % dict(u=u, auth=s.auth_sock, short=s.shortener_sock, db=s.db_sock,
           root=s.root), flush=True)
    follower.start()
    rc = 0
    try:
        while True:
            for name, alive in (("shortd", s.shortd_running()),
                                ("nginx", s.nginx_proc.poll() is None),
                                ("mariadbd", s.db_running())):
                if not alive:
                    print("stack: %s exited; stopping" % name,
                          file=sys.stderr)
                    rc = 1
                    raise KeyboardInterrupt
            time.sleep(0.5)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        print("\nstack: stopping", file=sys.stderr, flush=True)
        s.stop()
        stop.set()
        if s.sock_dir != s.root:
            shutil.rmtree(s.sock_dir, ignore_errors=True)
    return rc


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run the stack until Ctrl-C")
    r.add_argument("--port", type=int, default=5003)
    r.add_argument("--host", default="127.0.0.1")
    r.add_argument("--dir", default=os.path.join(TOP, "run"))
    r.add_argument("--shortd", default=os.path.join(TOP, "shortd"))
    args = ap.parse_args(argv)
    if args.cmd == "run":
        return cmd_run(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
