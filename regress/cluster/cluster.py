#!/usr/bin/python3
"""shortd scaled out, run privately on loopback: a 3-node Galera
cluster, two shortd instances and one nginx balancing over them.

    c = Cluster(shortd_path="build/shortd-asan")
    c.start()
    try:
        c.register("alice", "pw"); tok = c.login("alice", "pw")
        c.http("POST", "/", {"value": "https://example.org/"}, token=tok)
        c.instances[1].url      # instance B alone, through its own nginx
    finally:
        c.stop()

What the e2e suites (regress/e2e) use of regress/stack.py's Stack, a
Cluster offers too, so their test functions run unchanged through the
balancer: url, http(), raw_request(), unique(), register(), login(),
new_user(), shorten(), sql() (as root on node 1), jwt_secret (shared by
both instances) and restart_shortd(overrides, env) (restarts both).

Beyond that:

  c.galera                    regress/cluster/galera.py's Galera
  c.instances                 [A, B]: each a regress/stack.py Stack
                              used for its shortd only (and its own
                              nginx, for a path to that instance alone):
                              TCP listeners on loopback, db_host listing
                              every node, A starting with node 1 and B
                              with node 2
  c.node_sql(n, query, args)  rows, as root on node n, database shortd,
                              with causal reads
  c.kill_instance(k)          SIGKILL instance k's master and workers
"""

import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "regress"))
sys.path.insert(0, HERE)

import stack as stackmod  # noqa: E402
from galera import Galera, free_ports  # noqa: E402

NGINX_CLUSTER = os.path.join(TOP, "etc", "nginx-cluster.conf.in")
SCHEMA = os.path.join(TOP, "sql", "schema.sql")


class ClusterError(RuntimeError):
    pass


class Cluster:
    def __init__(self, shortd_path=None, root_dir=None, verbose=False):
        self.own_root = root_dir is None
        self.root = os.path.abspath(root_dir or tempfile.mkdtemp(
            prefix="shortd-cluster-"))
        os.makedirs(self.root, exist_ok=True)
        os.chmod(self.root, 0o755)
        self.shortd_path = os.path.abspath(
            shortd_path or os.path.join(TOP, "build", "shortd-asan"))
        self.verbose = verbose
        self.host = "127.0.0.1"
        self.galera = Galera(os.path.join(self.root, "galera"),
                             verbose=verbose)
        self.secret_path = os.path.join(self.root, "jwt.secret")
        self.db_password = None
        self.instances = []
        (self.port,) = free_ports(1)
        self.nginx_prefix = os.path.join(self.root, "nginx")
        self.nginx_conf = os.path.join(self.nginx_prefix, "nginx.conf")
        self.nginx_log = os.path.join(self.nginx_prefix, "error.log")
        self.nginx_proc = None
        self.problems = []
        self._unique = 0
        self._lock = threading.Lock()
        self.timings = {}
        # Every response is checked against docs/openapi.yaml, as in
        # make check.
        self.openapi = self._openapi_checker()

    # What the e2e suites call, borrowed from Stack: they only need
    # self.url (or host and port), self._lock and self._unique.
    http = stackmod.Stack.http
    raw_request = stackmod.Stack.raw_request
    unique = stackmod.Stack.unique
    register = stackmod.Stack.register
    login = stackmod.Stack.login
    new_user = stackmod.Stack.new_user
    shorten = stackmod.Stack.shorten
    _openapi_checker = stackmod.Stack._openapi_checker
    _openapi_check = stackmod.Stack._openapi_check

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    base_url = url

    @property
    def jwt_secret(self):
        with open(self.secret_path, "rb") as f:
            return f.read()

    def say(self, msg):
        if self.verbose:
            print("cluster: " + msg, file=sys.stderr, flush=True)

    # ------------------------------------------------------------ start

    def start(self):
        t0 = time.time()
        try:
            self._secrets()
            self.galera.start()
            self.timings["galera"] = time.time() - t0
            self._setup_db()
            t1 = time.time()
            self._make_instances()
            for inst in self.instances:
                inst.start_shortd()
                inst.start_nginx()
            self.start_nginx()
            self.timings["shortd+nginx"] = time.time() - t1
        except BaseException:
            self.stop()
            raise
        return self

    def _secrets(self):
        import secrets
        with open(self.secret_path, "w") as f:
            f.write(secrets.token_hex(48))
        os.chmod(self.secret_path, 0o600)
        self.db_password = secrets.token_hex(16)

    def _setup_db(self):
        n1 = self.galera.node(1)
        n1.sql("CREATE DATABASE IF NOT EXISTS shortd CHARACTER SET utf8mb4")
        for host in ("127.0.0.1", "localhost"):
            n1.sql("CREATE USER IF NOT EXISTS 'shortd'@'%s' "
                   "IDENTIFIED BY %%s" % host, (self.db_password,))
            n1.sql("GRANT ALL ON shortd.* TO 'shortd'@'%s'" % host)
        import subprocess
        with open(SCHEMA, "rb") as f:
            r = subprocess.run(
                ["mariadb", "--no-defaults", "--socket=" + n1.sock,
                 "-u", "root", "shortd"],
                stdin=f, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            raise ClusterError("applying %s failed:\n%s" % (
                SCHEMA, r.stdout.decode(errors="replace")))
        # Every node has it, at node 1's version, before any shortd
        # looks (each sql() is a new session, so poll rather than rely
        # on wsrep_sync_wait).
        want = n1.sql("SELECT MAX(version) FROM shortd.shortd_schema")[0][0]
        for node in self.galera.nodes:
            deadline = time.time() + 30
            while True:
                try:
                    rows = node.sql(
                        "SELECT MAX(version) FROM shortd.shortd_schema")
                except Exception:
                    rows = None
                if rows and rows[0][0] == want:
                    break
                if time.time() > deadline:
                    raise ClusterError("%s has no schema version %s "
                                       "(got %r)" % (node.name, want, rows))
                time.sleep(0.1)

    def db_hosts(self, first):
        """db_host for an instance: every node, node `first` first."""
        nodes = self.galera.nodes
        k = first - 1
        return ",".join(n.address for n in nodes[k:] + nodes[:k])

    def _make_instances(self):
        ports = free_ports(4)
        for k, name in enumerate(("a", "b")):
            inst = stackmod.Stack(
                root_dir=os.path.join(self.root, name),
                shortd_path=self.shortd_path,
                conf_overrides={
                    "auth_listen": "127.0.0.1:%d" % ports[2 * k],
                    "shortener_listen": "127.0.0.1:%d" % ports[2 * k + 1],
                    "db_host": self.db_hosts(k + 1),
                    "db_socket": "",
                    "db_password": self.db_password,
                    "jwt_secret_file": self.secret_path,
                    # Static pools: the cases count each instance's
                    # connections per node, which a growing pool blurs.
                    "auth_workers": "2",
                    "shortener_workers": "2",
                    # A host's redirect cache cannot see the other
                    # host's changes (only its TTL bounds them): off,
                    # as docs/scaling.md says for every host.
                    "redirect_cache": "0",
                })
            inst.name = name.upper()
            self.instances.append(inst)

    # ------------------------------------------------------------ nginx

    def nginx_text(self):
        """Instance A's nginx configuration (etc/nginx-local.conf.in as
        regress/stack.py fills it in: the same routes and error pages as
        every other test) with its listener and prefix made ours and
        its two fastcgi_pass targets turned into the upstreams of
        etc/nginx-cluster.conf.in, inserted at the top of http { }."""
        a = self.instances[0]
        text = a.nginx_text()
        with open(NGINX_CLUSTER) as f:
            snippet = f.read()
        servers = {}
        for pool in ("auth", "shortener"):
            servers[pool] = "\n\t".join(
                "server %s max_fails=1 fail_timeout=3s;" %
                inst.conf_values()[pool + "_listen"]
                for inst in self.instances)
        # The placeholders on lines of their own (not in the comments).
        for name, pool in (("AUTH", "auth"), ("SHORTENER", "shortener")):
            snippet = re.sub(r"(?m)^(\s*)@%s_SERVERS@\s*$" % name,
                             lambda m: m.group(1) + servers[pool], snippet)
        text = text.replace(a.nginx_prefix, self.nginx_prefix)
        mine = {
            "listen %s:%d;" % (a.host, a.port):
                "listen %s:%d;" % (self.host, self.port),
        }
        for pool in ("auth", "shortener"):
            target = stackmod.fastcgi_target(a.conf_values()[pool +
                                                             "_listen"])
            mine["fastcgi_pass %s;" % target] = \
                "fastcgi_pass shortd_%s;" % pool
        # The template may already pass the shortener pool to its own
        # one-server upstream: the snippet's upstream of both instances
        # takes its name and place.
        own = re.compile(r"(?m)^\s*upstream shortd_shortener \{[^}]*\}\n")
        if own.search(text):
            text = own.sub("", text, count=1)
            mine = {k: v for k, v in mine.items()
                    if v != "fastcgi_pass shortd_shortener;"}
        for old, new in mine.items():
            if old not in text:
                raise ClusterError("nginx template: no %r to replace" % old)
            text = text.replace(old, new)
        at = text.index("http {")
        at = text.index("\n", at) + 1
        return text[:at] + snippet + "\n" + text[at:]

    def start_nginx(self):
        os.makedirs(self.nginx_prefix, exist_ok=True)
        with open(self.nginx_conf, "w") as f:
            f.write(self.nginx_text())
        err = open(os.path.join(self.nginx_prefix, "stderr.log"), "ab")
        try:
            self.nginx_proc = stackmod.subprocess.Popen(
                ["nginx", "-c", self.nginx_conf, "-p",
                 self.nginx_prefix + "/", "-e", self.nginx_log,
                 "-g", "daemon off;"],
                stdin=stackmod.subprocess.DEVNULL, stdout=err, stderr=err,
                start_new_session=True, preexec_fn=stackmod._child_setup)
        finally:
            err.close()
        deadline = time.time() + 20
        while not stackmod.port_open(self.host, self.port):
            if self.nginx_proc.poll() is not None:
                raise ClusterError("nginx exited with %s:\n%s%s" % (
                    self.nginx_proc.returncode,
                    stackmod.tail(os.path.join(self.nginx_prefix,
                                               "stderr.log")),
                    stackmod.tail(self.nginx_log)))
            if time.time() > deadline:
                raise ClusterError("nginx not answering after 20 s")
            time.sleep(0.05)

    def stop_nginx(self):
        p = self.nginx_proc
        self.nginx_proc = None
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGQUIT)
        try:
            p.wait(5)
        except stackmod.subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    # ------------------------------------------------------------ Stack API

    def node_sql(self, n, query, args=None):
        conn = self.galera.node(n).connect(database="shortd")
        try:
            with conn.cursor() as c:
                c.execute("SET SESSION wsrep_sync_wait = 1")
                c.execute(query, args)
                return c.fetchall()
        finally:
            conn.close()

    def sql(self, query, args=None):
        return self.node_sql(1, query, args)

    def db_connect(self, **kw):
        return self.galera.node(1).connect(database="shortd", **kw)

    def restart_shortd(self, overrides=None, env=None):
        for inst in self.instances:
            inst.restart_shortd(overrides, env)

    def shortd_running(self):
        return all(inst.shortd_running() for inst in self.instances)

    def kill_instance(self, k):
        """SIGKILL instance k (0 or 1), master and workers at once, as
        when its host dies."""
        inst = self.instances[k]
        pid = inst.master_pid
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        inst.shortd_proc.wait()
        inst.shortd_exit = inst.shortd_proc.returncode
        inst.shortd_proc = None

    def restore(self):
        """Put everything back as the cases expect it -> notes."""
        notes = []
        for n in range(1, len(self.galera.nodes) + 1):
            if not self.galera.node(n).running():
                notes.append("node %d was down" % n)
                self.galera.restart(n)
        for inst in self.instances:
            if not inst.shortd_running():
                notes.append("instance %s was not running" % inst.name)
                inst.stop_shortd()
                inst.start_shortd()
            elif inst.current_overrides or inst.current_env:
                notes.append("instance %s ran with %r %r" % (
                    inst.name, inst.current_overrides, inst.current_env))
                inst.restart_shortd()
        if self.nginx_proc is None or self.nginx_proc.poll() is not None:
            notes.append("nginx was down")
            self.stop_nginx()
            self.start_nginx()
        return notes

    # ------------------------------------------------------------ stop

    def stop(self):
        for inst in self.instances:
            try:
                inst.stop_shortd()
            finally:
                inst.stop_nginx()
        self.stop_nginx()
        self.galera.stop()

    def log_files(self):
        files = {}
        for inst in self.instances:
            for name, path in inst.log_files().items():
                files["%s-%s" % (inst.name, name)] = path
        for node in self.galera.nodes:
            files["%s-error.log" % node.name] = node.log
        files["nginx-error.log"] = self.nginx_log
        files["nginx-access.log"] = os.path.join(self.nginx_prefix,
                                                 "access.log")
        files["nginx.conf"] = self.nginx_conf
        return {k: v for k, v in files.items() if os.path.exists(v)}

    def cleanup(self):
        self.stop()
        for inst in self.instances:
            if inst.sock_dir != inst.root:
                shutil.rmtree(inst.sock_dir, ignore_errors=True)
        if self.own_root:
            shutil.rmtree(self.root, ignore_errors=True)
