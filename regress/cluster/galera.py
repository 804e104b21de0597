#!/usr/bin/python3
"""A private 3-node MariaDB Galera cluster on loopback, for the cluster
tests (regress/cluster/run.py) and by hand:

    python3 regress/cluster/galera.py [--dir D]   # start, print, wait for ^C

As a module:

    g = Galera(root_dir)          # n nodes, every port picked free
    g.start()                     # node 1 bootstraps, 2.. join by SST
    g.node(2).sql("SELECT ...")   # as root over the node's unix socket
    g.kill(2); g.restart(2)       # SIGKILL; rejoin by IST (--wsrep-recover)
    g.wait_synced([1, 2, 3])
    g.stop()

Facts this relies on (found by trying, see DESIGN.md): only node 1 is
initialised by mariadb-install-db, the others get their data by SST;
rsync SST needs the servers to run as an unprivileged user, so as root
the nodes run as `mysql` (set in the child before exec, so that
PR_SET_PDEATHSIG survives the change of user and a dead harness takes
its nodes along); every node has its own SQL port and socket, group
communication, IST and SST ports, all on 127.0.0.1.
"""

import argparse
import atexit
import ctypes
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pymysql

PROVIDER = "/usr/lib/galera/libgalera_smm.so"
ZERO_UUID = "00000000-0000-0000-0000-000000000000"

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


class GaleraError(RuntimeError):
    pass


def free_ports(n, host="127.0.0.1"):
    """n distinct free TCP ports (held open together while picking)."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def tail(path, n=40):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def _demote(uid, gid):
    """preexec_fn: become uid/gid (if given), then ask for SIGTERM when
    the harness dies (the kernel clears that on a change of user, so
    it comes after)."""
    def setup():
        if uid is not None:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    return setup


class Node:
    def __init__(self, cluster, n, ports):
        self.cluster = cluster
        self.n = n
        self.name = "node%d" % n
        self.port, self.gcomm_port, self.ist_port, self.sst_port = ports
        self.dir = os.path.join(cluster.root, self.name)
        self.datadir = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "mysqld.sock")
        # Private: the servers of other test runs share /tmp.
        self.tmpdir = os.path.join(self.dir, "tmp")
        self.cnf = os.path.join(self.dir, "my.cnf")
        self.log = os.path.join(self.dir, "error.log")
        self.pidfile = os.path.join(self.dir, "mysqld.pid")
        self.proc = None

    @property
    def address(self):
        """host:port of the SQL listener, as shortd's db_host lists it."""
        return "127.0.0.1:%d" % self.port

    def write_cnf(self):
        c = self.cluster
        gcomm = ",".join("127.0.0.1:%d" % m.gcomm_port for m in c.nodes)
        provider = ";".join([
            "gmcast.listen_addr=tcp://127.0.0.1:%d" % self.gcomm_port,
            "ist.recv_addr=127.0.0.1:%d" % self.ist_port,
            "gcache.size=32M",
            # Notice a dead node in about a second, not four or more.
            "evs.keepalive_period=PT0.3S",
            "evs.suspect_timeout=PT1.5S",
            "evs.inactive_timeout=PT3S",
            "evs.inactive_check_period=PT0.5S",
            "evs.install_timeout=PT3S",
            "gmcast.peer_timeout=PT2S",
            "pc.wait_prim_timeout=PT10S",
        ])
        text = """[mysqld]
datadir = %(datadir)s
socket = %(sock)s
port = %(port)d
bind-address = 127.0.0.1
pid-file = %(pid)s
tmpdir = %(tmp)s
log-error = %(log)s
skip-name-resolve
innodb_buffer_pool_size = 32M
innodb_log_file_size = 16M
performance_schema = OFF
max_connections = 200
binlog_format = ROW
default_storage_engine = InnoDB
innodb_autoinc_lock_mode = 2
innodb_flush_log_at_trx_commit = 2
wsrep_on = ON
wsrep_provider = %(provider_lib)s
wsrep_cluster_name = shortd-test
wsrep_cluster_address = gcomm://%(gcomm)s
wsrep_node_name = %(name)s
wsrep_node_address = 127.0.0.1:%(gport)d
wsrep_sst_method = rsync
wsrep_sst_receive_address = 127.0.0.1:%(sport)d
wsrep_provider_options = "%(provider)s"
%(extra)s
""" % dict(datadir=self.datadir, sock=self.sock, port=self.port,
           pid=self.pidfile, tmp=self.tmpdir, log=self.log, provider_lib=PROVIDER,
           gcomm=gcomm, name=self.name, gport=self.gcomm_port,
           sport=self.sst_port, provider=provider,
           extra="\n".join("%s = %s" % kv for kv in c.extra.items()))
        with open(self.cnf, "w") as f:
            f.write(text)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def connect(self, **kw):
        args = dict(unix_socket=self.sock, user="root", charset="utf8mb4",
                    autocommit=True, connect_timeout=5, read_timeout=30,
                    write_timeout=30)
        args.update(kw)
        return pymysql.connect(**args)

    def sql(self, query, args=None, database=None):
        conn = self.connect(database=database)
        try:
            with conn.cursor() as c:
                c.execute(query, args)
                return c.fetchall()
        finally:
            conn.close()

    def status(self):
        """{wsrep_ready, wsrep_local_state_comment, ...} or None when the
        node does not answer."""
        try:
            rows = self.sql("SHOW GLOBAL STATUS WHERE Variable_name IN "
                            "('wsrep_ready', 'wsrep_local_state_comment', "
                            "'wsrep_cluster_size', "
                            "'wsrep_cluster_status', "
                            "'wsrep_last_committed')")
        except pymysql.err.Error:
            return None
        return {k: v for k, v in rows}

    def synced(self):
        st = self.status()
        return bool(st) and st.get("wsrep_ready") == "ON" and \
            st.get("wsrep_local_state_comment") == "Synced"


class Galera:
    def __init__(self, root_dir=None, nodes=3, extra=None, verbose=False):
        self.own_root = root_dir is None
        self.root = os.path.abspath(root_dir or tempfile.mkdtemp(
            prefix="shortd-galera-"))
        os.makedirs(self.root, exist_ok=True)
        os.chmod(self.root, 0o755)
        self.extra = dict(extra or {})
        self.verbose = verbose
        if os.geteuid() == 0:
            pw = pwd.getpwnam("mysql")
            self.uid, self.gid = pw.pw_uid, pw.pw_gid
        else:
            self.uid = self.gid = None
        ports = free_ports(4 * nodes)
        self.nodes = [Node(self, k + 1, ports[4 * k:4 * k + 4])
                      for k in range(nodes)]
        self.sst_log = []       # (node, "IST" or "SST", seconds)

    def say(self, msg):
        if self.verbose:
            print("galera: " + msg, file=sys.stderr, flush=True)

    def node(self, n):
        return self.nodes[n - 1]

    def _chown(self, path):
        if self.uid is None:
            return
        os.chown(path, self.uid, self.gid)
        for d, dirs, files in os.walk(path):
            os.chown(d, self.uid, self.gid)
            for f in files:
                os.chown(os.path.join(d, f), self.uid, self.gid)

    # ------------------------------------------------------------ start

    def start(self, timeout=120):
        atexit.register(self.stop)
        t0 = time.time()
        for node in self.nodes:
            os.makedirs(node.datadir, exist_ok=True)
            os.makedirs(node.tmpdir, exist_ok=True)
            node.write_cnf()
        for node in self.nodes:
            self._chown(node.dir)
        first = self.nodes[0]
        self._install(first)
        self._spawn(first, ["--wsrep-new-cluster"])
        self.wait_synced([1], timeout)
        self.say("node1 bootstrapped in %.1fs" % (time.time() - t0))
        for node in self.nodes[1:]:
            t1 = time.time()
            self._spawn(node)
            self.wait_synced([node.n], timeout)
            self.sst_log.append((node.n, "SST", time.time() - t1))
            self.say("%s joined in %.1fs" % (node.name, time.time() - t1))
        self.wait_size(len(self.nodes), timeout)
        return self

    def _install(self, node):
        cmd = ["mariadb-install-db", "--no-defaults",
               "--datadir=" + node.datadir,
               "--auth-root-authentication-method=normal",
               "--skip-test-db", "--tmpdir=" + node.tmpdir]
        if self.uid is not None:
            cmd.append("--user=mysql")
        with open(os.path.join(node.dir, "install.log"), "w") as log:
            rc = subprocess.call(cmd, stdout=log, stderr=log,
                                 stdin=subprocess.DEVNULL)
        if rc != 0:
            raise GaleraError("mariadb-install-db failed:\n" + tail(
                os.path.join(node.dir, "install.log")))

    def _spawn(self, node, args=()):
        if node.running():
            raise GaleraError("%s is already running" % node.name)
        with open(node.log, "a") as f:
            f.write("---- harness: starting %s %s\n" % (node.name,
                                                      " ".join(args)))
        self._chown(node.log)
        cmd = ["mariadbd", "--defaults-file=" + node.cnf] + list(args)
        out = open(os.path.join(node.dir, "stdout.log"), "ab")
        try:
            node.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                cwd=node.dir, start_new_session=True,
                preexec_fn=_demote(self.uid, self.gid))
        finally:
            out.close()

    def wait_synced(self, ns, timeout=120):
        deadline = time.time() + timeout
        for n in ns:
            node = self.node(n)
            while not node.synced():
                if not node.running():
                    raise GaleraError("%s exited with %s:\n%s" % (
                        node.name, node.proc and node.proc.returncode,
                        tail(node.log)))
                if time.time() > deadline:
                    raise GaleraError("%s not synced after %ds:\n%s" % (
                        node.name, timeout, tail(node.log)))
                time.sleep(0.2)

    def wait_size(self, size, timeout=60):
        """Until every running node sees a primary cluster of size."""
        deadline = time.time() + timeout
        while True:
            sts = [n.status() for n in self.nodes if n.running()]
            if sts and all(st and st.get("wsrep_cluster_size") == str(size)
                           and st.get("wsrep_cluster_status") == "Primary"
                           for st in sts):
                return
            if time.time() > deadline:
                raise GaleraError("cluster size not %d after %ds: %r" % (
                    size, timeout, sts))
            time.sleep(0.2)

    # ------------------------------------------------------------ faults

    def kill(self, n):
        """SIGKILL node n, as a crash or a pulled plug would."""
        node = self.node(n)
        if node.running():
            node.proc.kill()
            node.proc.wait()
        node.proc = None

    def recover_position(self, n):
        """The last committed uuid:seqno of a stopped node, by
        mariadbd --wsrep-recover (it rolls InnoDB forward and prints
        the position to the error log)."""
        node = self.node(n)
        before = os.path.getsize(node.log) if os.path.exists(node.log) \
            else 0
        cmd = ["mariadbd", "--defaults-file=" + node.cnf, "--wsrep-recover",
               "--log-error=" + node.log]
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, cwd=node.dir,
                           preexec_fn=_demote(self.uid, self.gid),
                           timeout=120)
        with open(node.log, errors="replace") as f:
            f.seek(before)
            text = f.read()
        m = None
        for m in re.finditer(r"Recovered position:?\s+([0-9a-f-]{36}:-?\d+)",
                             text):
            pass
        if r.returncode != 0 or m is None:
            raise GaleraError("%s: --wsrep-recover gave no position "
                              "(exit %s):\n%s" % (node.name, r.returncode,
                                                  text[-3000:]))
        return m.group(1)

    def restart(self, n, timeout=120):
        """Start a stopped (killed) node again so that it rejoins by IST:
        recover its position first, then start from it.  -> "IST" or
        "SST", as the node's log says the state came."""
        node = self.node(n)
        t0 = time.time()
        pos = self.recover_position(n)
        self._save_state(node, pos)
        before = os.path.getsize(node.log)
        self._spawn(node, ["--wsrep-start-position=" + pos])
        self.wait_synced([n], timeout)
        with open(node.log, errors="replace") as f:
            f.seek(before)
            text = f.read()
        # The joiner names the first seqno it asks for; an all-zero
        # uuid means it had no usable state and got a full copy.
        m = re.search(r"IST uuid:\s*([0-9a-f-]{36})", text)
        how = "IST" if m and m.group(1) != ZERO_UUID else "SST"
        self.sst_log.append((n, how, time.time() - t0))
        return how

    @staticmethod
    def _save_state(node, pos):
        """A node killed soon after joining by SST may not have written
        its cluster uuid to grastate.dat yet; Galera then ignores the
        start position and asks for a full SST.  The position InnoDB
        recovered is the truth, so write it there when it is missing."""
        path = os.path.join(node.datadir, "grastate.dat")
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            return
        m = re.search(r"^uuid:\s*(\S+)", text, re.M)
        if m and m.group(1) != ZERO_UUID:
            return
        uuid, seqno = pos.rsplit(":", 1)
        st = os.stat(path)
        with open(path, "w") as f:
            f.write("# GALERA saved state\nversion: 2.1\nuuid:    %s\n"
                    "seqno:   %s\nsafe_to_bootstrap: 0\n" % (uuid, seqno))
        os.chown(path, st.st_uid, st.st_gid)

    # ------------------------------------------------------------ stop

    def stop(self):
        """Stop every node (TERM, KILL after 30 s); idempotent."""
        for node in reversed(self.nodes):
            p = node.proc
            if p is None or p.poll() is not None:
                node.proc = None
                continue
            try:
                p.terminate()
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            except ProcessLookupError:
                pass
            node.proc = None

    def cleanup(self):
        self.stop()
        if self.own_root:
            shutil.rmtree(self.root, ignore_errors=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description="a private Galera cluster")
    ap.add_argument("--dir", default=None)
    ap.add_argument("--nodes", type=int, default=3)
    args = ap.parse_args(argv)
    g = Galera(args.dir, nodes=args.nodes, verbose=True)
    t0 = time.time()
    try:
        g.start()
        print("cluster up in %.1fs" % (time.time() - t0))
        for node in g.nodes:
            print("  %s  %s  socket %s" % (node.name, node.address,
                                           node.sock))
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        g.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
