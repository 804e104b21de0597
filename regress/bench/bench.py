#!/usr/bin/python3
"""Benchmarks of shortd against the real stack, with nginx alone as the
yardstick (`make bench`; never part of `make check`).

    bench.py --shortd ./shortd --hashtime build/bench/hashtime
             [--duration 5] [--rounds 5] [--warmup 3] [--links 1000000]
             [--buffer-pool-mb 256] [--sweep 1,8,32,128] [--set KEY=VALUE]
             [--out regress/bench/results.md] [--png regress/bench/results.png]

It starts the same private stack as the e2e tests (regress/stack.py:
MariaDB, shortd, nginx on private sockets and ports) with the release
build, plus one extra server in the same nginx on a side port that
answers `return 301` itself: "nginx alone", the ceiling of anything
behind that nginx.  Then:

 1. three users through the API (the list owner, the creator, the one
    who logs in) and 1,000 links of the list owner by multi-row INSERT;
 2. phase 1k: rounds of [nginx alone, redirect over the 1,000 ids];
 3. 999,000 more links of a bulk user by LOAD DATA LOCAL INFILE (ids
    random base62, as shortd makes them), so the table holds 1,000,000;
 4. phase 1M: rounds of [nginx alone, redirect over all 1M ids, create,
    list, login], and one argon2id verification timed per round by
    hashtime (shortd's own password.c, the configured parameters);
 5. a sweep of nginx alone and redirect (1M) over 1/8/32/128 connections;
 6. RSS (and PSS) of the master and each worker at idle and at the end,
    and the CPU time each process spent per redirect.

wrk runs with -t2 -c32 unless said otherwise; each figure is the median
of the rounds, each ratio the median of the per-round ratios to the
nginx-alone run of the same round (so load from other programs on the
machine shifts both sides alike).  The markdown table goes to --out and
stdout, the plot to --png.
"""

import argparse
import datetime
import json
import os
import platform
import random
import re
import shutil
import socket
import statistics
import string
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "regress"))

import stack as stackmod  # noqa: E402

B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
TARGETS = {
    "redirect": 0.20,       # x nginx alone, at 1k and 1M links
    "redirect_p99_ms": 10.0,
    "create": 0.05,
    "login": 0.9,           # x cores / one hash
    "idle_mb": 30.0,        # all shortd processes, default pools
    "growth_mb": 1.0,       # per worker over the runs
}


def say(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- stack

SIDE_SERVER = """
	# bench.py: nginx alone, the yardstick every shortd figure is
	# compared with (same nginx, same http-level settings and log).
	server {
		listen %s;
		server_name bench-side;
		location / {
			return 301 https://example.org/;
		}
	}
"""


class BenchStack(stackmod.Stack):
    """The test stack plus a side server in nginx answering by itself."""

    def __init__(self, side_port, new_conn=False, **kw):
        super().__init__(**kw)
        self.side_port = side_port
        self.new_conn = new_conn

    @property
    def side_url(self):
        return "http://%s:%d" % (self.host, self.side_port)

    def nginx_text(self):
        text = super().nginx_text()
        if self.new_conn:
            # The shipped configuration keeps connections to the
            # shortener pool (etc/nginx-local.conf.in); --new-conn
            # measures one per request.
            text = text.replace("fastcgi_keep_conn on;",
                                "fastcgi_keep_conn off;")
        end = text.rindex("}")      # the end of the http block
        return (text[:end] + SIDE_SERVER % ("%s:%d" % (self.host,
                                                      self.side_port)) +
                text[end:])


# ---------------------------------------------------------------- /proc

def proc_kb(pid, field, path="status"):
    try:
        with open("/proc/%d/%s" % (pid, path)) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def memory(pid):
    return {"rss": proc_kb(pid, "VmRSS"),
            "pss": proc_kb(pid, "Pss", "smaps_rollup")}


def cpu_ticks(pid):
    """utime + stime of pid in clock ticks, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return int(rest[11]) + int(rest[12])
    except (OSError, IndexError, ValueError):
        return None


def shortd_procs(s):
    procs = [("master", s.master_pid)]
    for pool in ("auth", "shortener"):
        for i, pid in enumerate(sorted(s.workers(pool))):
            procs.append(("%s worker %d" % (pool, i + 1), pid))
    return procs


def socket_inodes(pid):
    out = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if t.startswith("socket:"):
                out.add(t)
    except OSError:
        pass
    return out


def fastcgi_conns(s, pool):
    """FastCGI connections the pool's workers hold open right now: their
    sockets but the listening one (the master's too) and the one to the
    database."""
    master = socket_inodes(s.master_pid)
    n = 0
    for pid in s.workers(pool):
        n += max(0, len(socket_inodes(pid) - master) - 1)
    return n


def nginx_errors(s):
    """The error-level lines of nginx's log (upstream failures)."""
    try:
        with open(s.nginx_log, errors="replace") as f:
            return [l.rstrip() for l in f
                    if re.search(r"\[(error|crit|alert|emerg)\]", l)]
    except OSError:
        return []


def process_groups(s):
    """{name: [pids]} of the processes whose CPU a request costs."""
    nginx = [s.nginx_proc.pid] + stackmod.children_of(s.nginx_proc.pid)
    return {
        "nginx": nginx,
        "shortd workers": s.workers("shortener") + s.workers("auth"),
        "mariadbd": [s.db_proc.pid],
    }


def schedstat(pids):
    """(ns on a CPU, ns runnable but waiting for one) summed over pids,
    from /proc/PID/schedstat."""
    run = wait = 0
    for pid in pids:
        try:
            with open("/proc/%d/schedstat" % pid) as f:
                a = f.read().split()
            run += int(a[0])
            wait += int(a[1])
        except (OSError, IndexError, ValueError):
            pass
    return run, wait


def group_ticks(groups):
    return {k: sum(cpu_ticks(p) or 0 for p in v) for k, v in groups.items()}


def switches(pid):
    return ((proc_kb(pid, "voluntary_ctxt_switches") or 0) +
            (proc_kb(pid, "nonvoluntary_ctxt_switches") or 0))


def group_switches(groups):
    return sum(switches(p) for v in groups.values() for p in v)


# ---------------------------------------------------------------- data

def random_ids(n, seen):
    out = []
    while len(out) < n:
        i = "".join(random.choice(B62) for _ in range(7))
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out


def load_small(s, owner, n, seen):
    """n links of owner by multi-row INSERTs -> their ids."""
    ids = random_ids(n, seen)
    now = int(time.time() * 1e6)
    rows = [(i, owner, "https://example.com/bench/list/%d/%s" % (k, i),
             now + k, now + k) for k, i in enumerate(ids)]
    conn = s.db_connect()
    try:
        with conn.cursor() as c:
            for k in range(0, len(rows), 1000):
                c.executemany(
                    "INSERT INTO urls (id, `user`, value, created_us, "
                    "updated_us) VALUES (%s, %s, %s, %s, %s)",
                    rows[k:k + 1000])
    finally:
        conn.close()
    return ids


def load_bulk(s, owner, n, seen, workdir):
    """n links of owner by LOAD DATA LOCAL INFILE -> their ids."""
    ids = random_ids(n, seen)
    ids.sort()          # primary key order: appends, not page splits
    path = os.path.join(workdir, "bulk.tsv")
    now = int(time.time() * 1e6)
    with open(path, "w") as f:
        for k, i in enumerate(ids):
            us = now + k
            f.write("%s\t%s\thttps://example.com/bench/bulk/%d/%s\t%d\t%d\n"
                    % (i, owner, k, i, us, us))
    conn = s.db_connect(local_infile=True, autocommit=False)
    try:
        with conn.cursor() as c:
            c.execute("SET unique_checks = 0")
            c.execute("SET foreign_key_checks = 0")
            c.execute("LOAD DATA LOCAL INFILE %s INTO TABLE urls "
                      "FIELDS TERMINATED BY '\\t' LINES TERMINATED BY '\\n' "
                      "(id, `user`, value, created_us, updated_us)", (path,))
        conn.commit()
    finally:
        conn.close()
    os.unlink(path)
    return ids


def write_ids(path, ids):
    with open(path, "w") as f:
        f.write("\n".join(ids))
        f.write("\n")


# ---------------------------------------------------------------- wrk

class Wrk:
    def __init__(self, workdir, threads=2, conns=32, duration=5):
        self.workdir = workdir
        self.threads = threads
        self.conns = conns
        self.duration = duration
        with open(os.path.join(HERE, "common.lua")) as f:
            self.common = f.read()
        self.scripts = {}

    def script(self, name):
        if name not in self.scripts:
            with open(os.path.join(HERE, name + ".lua")) as f:
                text = self.common + "\n" + f.read()
            path = os.path.join(self.workdir, name + ".lua")
            with open(path, "w") as f:
                f.write(text)
            self.scripts[name] = path
        return self.scripts[name]

    def run(self, name, url, args=(), conns=None, duration=None,
            sample=None):
        """One wrk run -> its figures; sample(), if given, is called
        half-way through and its result kept as r["sample"]."""
        conns = conns or self.conns
        threads = min(self.threads, conns)
        duration = duration or self.duration
        cmd = ["wrk", "-t%d" % threads, "-c%d" % conns,
               "-d%ds" % duration, "--timeout", "10s",
               "-s", self.script(name), url, "--"] + list(args)
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        got = None
        if sample is not None:
            time.sleep(duration / 2)
            got = sample()
        out, err = p.communicate()
        m = re.search(r"^BENCH (\{.*\})$", out, re.M)
        if p.returncode != 0 or not m:
            raise RuntimeError("wrk %s failed (%s):\n%s%s" % (
                name, p.returncode, out, err))
        r = json.loads(m.group(1))
        r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
        r["errors"] = sum(r[k] for k in ("connect", "read", "write",
                                         "status", "timeout"))
        r["conns"] = conns
        r["sample"] = got
        return r


# ---------------------------------------------------------------- report

def fmt_us(us):
    if us is None:
        return "-"
    if us >= 1e6:
        return "%.2f s" % (us / 1e6)
    if us >= 1e3:
        return "%.2f ms" % (us / 1e3)
    return "%d µs" % us


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarize(runs):
    """Median figures of a list of wrk results."""
    return {
        "rps": median([r["rps"] for r in runs]),
        "p50_us": median([r["p50_us"] for r in runs]),
        "p99_us": median([r["p99_us"] for r in runs]),
        "upstream": median([r["sample"] for r in runs]),
        "errors": sum(r["errors"] for r in runs),
        "requests": sum(r["requests"] for r in runs),
        "n": len(runs),
    }


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = proc_kb_meminfo()
    return "%s, %d cores, %s RAM, Linux %s" % (
        cpu, os.cpu_count(), "%.0f GB" % (mem / 1024 / 1024) if mem else "?",
        platform.release())


def proc_kb_meminfo():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1])
    except OSError:
        return None


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def version(cmd):
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=10)
        return p.stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


def verdict(ok):
    return "yes" if ok else "**no**"


# ---------------------------------------------------------------- main

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shortd", default=os.path.join(TOP, "shortd"))
    ap.add_argument("--hashtime",
                    default=os.path.join(TOP, "build", "bench", "hashtime"))
    ap.add_argument("--duration", type=int, default=5,
                    help="seconds per measured run")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=3,
                    help="seconds of each warm-up run")
    ap.add_argument("--links", type=int, default=1000000)
    ap.add_argument("--list-links", type=int, default=1000)
    ap.add_argument("--buffer-pool-mb", type=int, default=256,
                    help="InnoDB buffer pool for the run (0: the stack's)")
    ap.add_argument("--sweep", default="1,8,32,128")
    ap.add_argument("--sweep-rounds", type=int, default=3)
    ap.add_argument("--set", action="append", default=[],
                    metavar="KEY=VALUE", help="shortd.conf override")
    ap.add_argument("--out", default=os.path.join(HERE, "results.md"))
    ap.add_argument("--png", default=os.path.join(HERE, "results.png"))
    ap.add_argument("--profile", action="store_true",
                    help="perf record nginx, the shortener workers and "
                    "mariadbd during one more redirect run")
    ap.add_argument("--new-conn", action="store_true",
                    help="a new FastCGI connection per request to the "
                    "shortener pool (fastcgi_keep_conn off); the shipped "
                    "nginx config keeps them")
    ap.add_argument("--keep", action="store_true",
                    help="keep the stack's directory")
    args = ap.parse_args(argv)

    for tool in ("wrk", "gnuplot"):
        if shutil.which(tool) is None:
            sys.exit("bench: %s is not installed (make bench-deps)" % tool)
    for path in (args.shortd, args.hashtime):
        if not os.access(path, os.X_OK):
            sys.exit("bench: %s is not built (make bench builds it)" % path)
    overrides = {}
    for kv in args.set:
        k, _, v = kv.partition("=")
        overrides[k] = v
    overrides.setdefault("log_level", "warn")
    # Static pools of the default minimum (2 + 2): the figures are per
    # worker count, and a pool growing mid-run would blur them.
    overrides.setdefault("auth_workers", "2")
    overrides.setdefault("shortener_workers", "2")

    workdir = tempfile.mkdtemp(prefix="shortd-bench-")
    os.chmod(workdir, 0o755)    # nginx's workers run as nobody
    s = BenchStack(side_port=stackmod.free_port(),
                   new_conn=args.new_conn, shortd_path=args.shortd,
                   root_dir=os.path.join(workdir, "stack"),
                   conf_overrides=overrides, verbose=True)
    load_before = loadavg()
    started = time.time()
    try:
        s.start()
        res = run(s, args, workdir)
    finally:
        s.stop()
        if args.keep:
            say("kept " + workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    res["load_before"] = load_before
    res["load_after"] = loadavg()
    res["elapsed"] = time.time() - started
    text = report(res, args)
    with open(args.out, "w") as f:
        f.write(text)
    print(text)
    plot(res, args.png, workdir)
    say("table in %s, plot in %s" % (args.out, args.png))
    return 0


def run(s, args, workdir):
    res = {"conf": s.effective_conf(), "machine": machine(),
           "nginx": version(["nginx", "-v"]),
           "mariadb": version(["mariadbd", "--version"]),
           "wrk": version(["wrk", "-v"])}
    conf = res["conf"]
    w = Wrk(workdir, duration=args.duration)
    seen = set()

    if args.buffer_pool_mb > 0:
        s.sql("SET GLOBAL innodb_buffer_pool_size = %s",
              (args.buffer_pool_mb * 1024 * 1024,))
    res["buffer_pool_mb"] = int(s.sql(
        "SELECT @@innodb_buffer_pool_size")[0][0]) // (1024 * 1024)

    time.sleep(1)
    procs = shortd_procs(s)
    res["procs"] = procs
    res["mem_idle"] = {pid: memory(pid) for _, pid in procs}

    # Users through the API, links of the list owner by SQL.
    list_user, list_pw, list_tok = s.new_user("bench-list")
    create_user, create_pw, create_tok = s.new_user("bench-create")
    login_user, login_pw, _ = s.new_user("bench-login")
    bulk_user = s.new_user("bench-bulk")[0]
    small = load_small(s, list_user, args.list_links, seen)
    ids1k = os.path.join(workdir, "ids-1k.txt")
    write_ids(ids1k, small)
    probe = small[0]
    r = s.http("GET", "/" + probe)
    assert r.status_code == 301, "GET /%s: %d %s" % (probe, r.status_code,
                                                     r.text)

    redirect_url = s.url

    def short_conns():
        return fastcgi_conns(s, "shortener")
    # Phase 1k.
    say("phase 1k: warm-up")
    w.run("nginx", s.side_url, duration=args.warmup)
    w.run("redirect", redirect_url, [ids1k], duration=args.warmup)
    runs = {k: [] for k in ("nginx_1k", "redirect_1k", "nginx", "redirect",
                            "create", "create_relaxed", "list", "login")}
    for i in range(args.rounds):
        say("phase 1k: round %d/%d" % (i + 1, args.rounds))
        runs["nginx_1k"].append(w.run("nginx", s.side_url))
        runs["redirect_1k"].append(w.run("redirect", redirect_url, [ids1k],
                                         sample=short_conns))

    # Phase 1M.
    nbulk = max(0, args.links - args.list_links)
    say("loading %d links by LOAD DATA LOCAL INFILE" % nbulk)
    t0 = time.time()
    bulk = load_bulk(s, bulk_user, nbulk, seen, workdir)
    res["load_s"] = time.time() - t0
    res["nlinks"] = int(s.sql("SELECT COUNT(*) FROM urls")[0][0])
    say("loaded in %.1f s; %d links" % (res["load_s"], res["nlinks"]))
    idsall = os.path.join(workdir, "ids-all.txt")
    write_ids(idsall, small + bulk)
    del bulk
    r = s.http("GET", "/" + probe)
    assert r.status_code == 301

    say("phase 1M: warm-up")
    w.run("nginx", s.side_url, duration=args.warmup)
    w.run("redirect", redirect_url, [idsall], duration=args.warmup)
    w.run("create", s.url, [create_tok], duration=args.warmup)
    w.run("list", s.url, [list_tok], duration=args.warmup)
    w.run("login", s.url, [login_user, login_pw], duration=args.warmup)

    groups = process_groups(s)
    hz = os.sysconf("SC_CLK_TCK")
    cpu = {}            # benchmark -> group -> ticks, and requests
    sched = {}          # benchmark -> the pool's run/wait/elapsed s

    def measured(name, url, wargs, sample, pool="shortener"):
        workers = s.workers(pool)
        t0, x0 = group_ticks(groups), group_switches(groups)
        s0, e0 = schedstat(workers), time.monotonic()
        r = w.run(name, url, wargs, sample=sample)
        t1, x1 = group_ticks(groups), group_switches(groups)
        s1, e1 = schedstat(workers), time.monotonic()
        c = cpu.setdefault(name, {"requests": 0, "switches": 0})
        for k in groups:
            c[k] = c.get(k, 0) + t1[k] - t0[k]
        c["requests"] += r["requests"]
        c["switches"] += x1 - x0
        # How the pool's workers spent the run: on a CPU, runnable but
        # waiting for one (other programs had it), or idle (no work).
        q = sched.setdefault(name, {"run": 0, "wait": 0, "span": 0})
        q["run"] += (s1[0] - s0[0]) / 1e9
        q["wait"] += (s1[1] - s0[1]) / 1e9
        q["span"] += (e1 - e0) * len(workers)
        return r

    hashtime = [args.hashtime, conf["argon2_memory"],
                conf["argon2_iterations"], conf["argon2_parallelism"]]
    hashes, hash_walls, fsyncs = [], [], []
    for i in range(args.rounds):
        say("phase 1M: round %d/%d" % (i + 1, args.rounds))
        runs["nginx"].append(w.run("nginx", s.side_url))
        runs["redirect"].append(measured("redirect", redirect_url,
                                         [idsall], short_conns))
        runs["create"].append(measured("create", s.url, [create_tok],
                                       short_conns))
        fsyncs.append(fsync_time(s.datadir))
        # The same with the commit's fsync left to a background flush
        # once a second: what shortd does when the disk does not
        # bound it.
        s.sql("SET GLOBAL innodb_flush_log_at_trx_commit = 2")
        try:
            runs["create_relaxed"].append(w.run("create", s.url,
                                                [create_tok],
                                                sample=short_conns))
        finally:
            s.sql("SET GLOBAL innodb_flush_log_at_trx_commit = 1")
        runs["list"].append(measured("list", s.url, [list_tok],
                                     short_conns))
        runs["login"].append(measured(
            "login", s.url, [login_user, login_pw],
            lambda: fastcgi_conns(s, "auth"), pool="auth"))
        # CPU time, which other programs on the machine do not
        # stretch (wall-clock time kept for the record).
        out = subprocess.run(hashtime + ["5"], stdout=subprocess.PIPE,
                             text=True, check=True).stdout.split()
        hashes.append(float(out[4]))
        hash_walls.append(float(out[0]))
    res["cpu_us"] = {
        name: {k: v / hz * 1e6 / c["requests"] for k, v in c.items()
               if k not in ("requests", "switches")}
        for name, c in cpu.items()}
    res["switches"] = {name: c["switches"] / c["requests"]
                       for name, c in cpu.items()}
    res["sched"] = {name: {k: q[k] / q["span"] for k in ("run", "wait")}
                    for name, q in sched.items()}
    res["hash_s"] = median(hashes)
    res["hashes"] = hashes
    res["hash_wall_s"] = median(hash_walls)
    res["fsync_s"] = median(fsyncs)

    if args.profile:
        say("profile: perf record during a redirect run")
        res["profile"] = profile(s, w, redirect_url, idsall, workdir)

    # Connection sweep.
    res["sweep"] = []
    for c in [int(x) for x in args.sweep.split(",") if x]:
        ns, rs = [], []
        for i in range(args.sweep_rounds):
            say("sweep: %d connections, round %d/%d" % (
                c, i + 1, args.sweep_rounds))
            ns.append(w.run("nginx", s.side_url, conns=c))
            rs.append(w.run("redirect", redirect_url, [idsall], conns=c,
                            sample=short_conns))
        n, r = summarize(ns), summarize(rs)
        n["sample"], r["sample"] = None, r["upstream"]
        r["ratio"] = median([b["rps"] / a["rps"] for a, b in zip(ns, rs)])
        res["sweep"].append((c, n, r))

    # Correctness after the runs: the probe still redirects.
    r = s.http("GET", "/" + probe)
    assert r.status_code == 301, r.status_code
    res["nginx_errors"] = nginx_errors(s)
    time.sleep(1)
    res["mem_after"] = {pid: memory(pid) for _, pid in procs}
    res["procs_after"] = shortd_procs(s)
    res["runs"] = runs
    return res


def fsync_time(directory, n=30):
    """Median seconds of a 4 KiB write + fdatasync in directory: what a
    durable commit waits for at least."""
    path = os.path.join(directory, "bench-fsync.tmp")
    times = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        block = b"x" * 4096
        for i in range(n):
            t0 = time.perf_counter()
            os.pwrite(fd, block, (i % 8) * 4096)
            os.fdatasync(fd)
            times.append(time.perf_counter() - t0)
    finally:
        os.close(fd)
        os.unlink(path)
    return statistics.median(times)


def profile(s, w, url, idfile, workdir):
    """perf samples of the processes behind a redirect run, by
    process and object, then the shortener workers' top symbols."""
    if shutil.which("perf") is None:
        return "perf is not installed"
    groups = process_groups(s)
    pids = groups["nginx"] + s.workers("shortener") + groups["mariadbd"]
    data = os.path.join(workdir, "perf.data")
    secs = max(3, w.duration)
    p = subprocess.Popen(
        ["perf", "record", "-q", "-e", "cpu-clock", "-F", "999", "-g",
         "-o", data, "-p", ",".join(map(str, pids)), "--", "sleep",
         str(secs)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True)
    w.run("redirect", url, [idfile], duration=secs + 2)
    err = p.communicate()[1]
    if p.returncode != 0 or not os.path.exists(data):
        return "perf record failed: " + err.strip()[-300:]

    def report(*extra):
        r = subprocess.run(["perf", "report", "-i", data, "--stdio",
                            "--no-children", "-g", "none",
                            "--percent-limit", "0.7", "-q"] + list(extra),
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           text=True)
        return "\n".join(l.rstrip() for l in r.stdout.splitlines()
                         if l.strip())
    return ("by process and object (% of all samples):\n" +
            report("--sort", "comm,dso") +
            "\n\ntop symbols (% of all samples; in a VM, time around "
            "a context switch lands in finish_task_switch):\n" +
            report("--sort", "comm,sym", "--percent-limit", "1.5"))


def ratio_of(runs, name, base):
    return median([r["rps"] / b["rps"] for r, b in zip(runs[name],
                                                        runs[base])])


def report(res, args):
    runs = res["runs"]
    conf = res["conf"]
    cores = os.cpu_count()
    S = {k: summarize(v) for k, v in runs.items() if v}
    rat = {
        "redirect_1k": ratio_of(runs, "redirect_1k", "nginx_1k"),
        "redirect": ratio_of(runs, "redirect", "nginx"),
        "create": ratio_of(runs, "create", "nginx"),
        "create_relaxed": ratio_of(runs, "create_relaxed", "nginx"),
        "list": ratio_of(runs, "list", "nginx"),
        "login": ratio_of(runs, "login", "nginx"),
    }
    hash_s = res["hash_s"]
    login_ceiling = cores / hash_s
    login_ratio = S["login"]["rps"] / login_ceiling
    nl = "{:,}".format(res["nlinks"])
    L = []
    L.append("# shortd benchmarks")
    L.append("")
    L.append("%s; `make bench` (regress/bench/bench.py), %s." % (
        datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "%d rounds of %d s per figure, medians" % (args.rounds,
                                                    args.duration)))
    L.append("")
    L.append("- machine: %s" % res["machine"])
    L.append("- load average before / after: %s / %s (other programs on "
             "the machine share the cores: absolute figures are noisy, "
             "ratios are taken within each round)" % (
                 res["load_before"], res["load_after"]))
    L.append("- %s, %s, %s" % (res["nginx"], res["mariadb"], res["wrk"]))
    def pool(name):
        """A pool's size as configured: N (static) or MIN..MAX."""
        n = str(conf.get(name + "_workers", "0"))
        if n not in ("", "0"):
            return n
        return "%s..%s" % (conf.get(name + "_workers_min", "?"),
                           conf.get(name + "_workers_max", "?"))
    L.append("- shortd: release build; auth workers %s, shortener workers "
             "%s; argon2id m=%s KiB t=%s p=%s; nginx worker_processes 1; "
             "InnoDB buffer pool %d MB; %s links, loaded in %.0f s" % (
                 pool("auth"), pool("shortener"),
                 conf["argon2_memory"], conf["argon2_iterations"],
                 conf["argon2_parallelism"], res["buffer_pool_mb"], nl,
                 res["load_s"]))
    L.append("- nginx → shortd: %s" % (
        "kept FastCGI connections to the shortener pool (upstream "
        "keepalive, fastcgi_keep_conn on), a new one per login"
        if not args.new_conn else "a new FastCGI connection per request "
        "(--new-conn)"))
    L.append("- wrk -t2 -c32 --timeout 10s; \"FastCGI conns\": connections "
             "between nginx and the pool's workers, counted half-way "
             "through each run (median)")
    L.append("")
    L.append("| benchmark | req/s | p50 | p99 | FastCGI conns | "
             "× nginx alone | target | met |")
    L.append("|---|---:|---:|---:|---:|---:|---|---|")

    def row(label, key, ratio, target, ok):
        x = S[key]
        err = " (%d errors)" % x["errors"] if x["errors"] else ""
        up = "%d" % x["upstream"] if x["upstream"] is not None else ""
        L.append("| %s%s | %.0f | %s | %s | %s | %s | %s | %s |" % (
            label, err, x["rps"], fmt_us(x["p50_us"]), fmt_us(x["p99_us"]),
            up, "%.3f" % ratio if ratio is not None else "1",
            target, ok))

    p99_ok = lambda k: S[k]["p99_us"] < TARGETS["redirect_p99_ms"] * 1000
    row("nginx alone (`return 301`), 1k phase", "nginx_1k", None, "", "")
    row("redirect `GET /:id`, 1,000 links", "redirect_1k",
        rat["redirect_1k"], "≥ 0.20×, p99 < 10 ms",
        verdict(rat["redirect_1k"] >= TARGETS["redirect"] and
                p99_ok("redirect_1k") and not S["redirect_1k"]["errors"]))
    row("nginx alone (`return 301`)", "nginx", None, "", "")
    row("redirect `GET /:id`, %s links" % nl, "redirect", rat["redirect"],
        "≥ 0.20×, p99 < 10 ms",
        verdict(rat["redirect"] >= TARGETS["redirect"] and
                p99_ok("redirect") and not S["redirect"]["errors"]))
    row("create `POST /`", "create", rat["create"], "≥ 0.05×",
        verdict(rat["create"] >= TARGETS["create"] and
                not S["create"]["errors"]))
    row("create, innodb_flush_log_at_trx_commit=2", "create_relaxed",
        rat["create_relaxed"], "(what the disk costs)", "")
    row("list `GET /` (first %s of %s links)" % (
        conf["list_default_limit"], "{:,}".format(args.list_links)),
        "list", rat["list"], "", "")
    row("login `POST /users/login`", "login", rat["login"],
        "≥ 0.9 × %d cores / hash = %.0f/s" % (cores, 0.9 * login_ceiling),
        verdict(login_ratio >= TARGETS["login"] and
                not S["login"]["errors"]))
    L.append("")
    fs = res["fsync_s"]
    nw = int(conf["shortener_workers"])
    L.append("Create commits one INSERT each (autocommit), and InnoDB makes "
             "a commit durable with an fsync of its log: a 4 KiB write + "
             "fdatasync in the datadir took %.2f ms (median, same run), so "
             "%d shortener workers, each waiting for its commit, cannot "
             "pass about %d / %.2f ms = %.0f creates/s unless commits share "
             "an fsync (group commit). Measured %.0f/s durable, %.0f/s with "
             "the flush left to once a second." % (
                 fs * 1e3, nw, nw, fs * 1e3, nw / fs, S["create"]["rps"],
                 S["create_relaxed"]["rps"]))
    L.append("")
    login_cpu = sum(res["cpu_us"]["login"].values()) / 1e6
    L.append("One argon2id verification (m=%s KiB, t=%s, p=%s), timed by "
             "regress/bench/hashtime.c with shortd's password.c in the same "
             "run: median CPU time %.1f ms (per round: %s; wall clock %.1f "
             "ms). Login ceiling %d cores / %.1f ms = %.0f/s; measured "
             "%.0f/s = **%.2f** of it. A login cost %.1f ms of CPU in "
             "all (nginx, worker, mariadbd), next to %.1f ms for the hash "
             "alone." % (
                 conf["argon2_memory"], conf["argon2_iterations"],
                 conf["argon2_parallelism"], hash_s * 1e3,
                 ", ".join("%.1f" % (h * 1e3) for h in res["hashes"]),
                 res["hash_wall_s"] * 1e3, cores, hash_s * 1e3,
                 login_ceiling, S["login"]["rps"], login_ratio,
                 login_cpu * 1e3, hash_s * 1e3))
    L.append("")
    q = res["sched"]["login"]
    L.append("During the login runs the auth workers were on a CPU %.0f%% "
             "of the time, runnable but waiting for a CPU %.0f%% (other "
             "programs had it), idle %.0f%% (no request for them): against "
             "the CPU they got (%.0f%% of %d cores / %.1f ms = %.0f/s), "
             "login reached %.2f." % (
                 100 * q["run"], 100 * q["wait"],
                 100 * max(0.0, 1 - q["run"] - q["wait"]), 100 * q["run"],
                 cores, hash_s * 1e3, q["run"] * login_ceiling,
                 S["login"]["rps"] / (q["run"] * login_ceiling)
                 if q["run"] > 0 else 0))
    L.append("")
    L.append("CPU time per request (phase 1M, -c32), from /proc/PID/stat "
             "of each process (tick-granular); context switches of those "
             "processes per request; how the pool's workers spent the runs "
             "(/proc/PID/schedstat):")
    L.append("")
    groups = list(next(iter(res["cpu_us"].values())).keys())
    L.append("| benchmark | " + " | ".join(groups) +
             " | total | context switches | workers on CPU / waiting "
             "for one / idle |")
    L.append("|---|" + "---:|" * (len(groups) + 3))
    for name, c in res["cpu_us"].items():
        q = res["sched"][name]
        L.append("| %s | %s | %.0f µs | %.1f | %.0f%% / %.0f%% / %.0f%% |"
                 % (name, " | ".join("%.0f µs" % c[g] for g in groups),
                    sum(c.values()), res["switches"][name], 100 * q["run"],
                    100 * q["wait"],
                    100 * max(0.0, 1 - q["run"] - q["wait"])))
    L.append("")

    # Memory.
    L.append("## Memory (default pools: master + %s auth + %s shortener "
             "workers)" % (conf["auth_workers"], conf["shortener_workers"]))
    L.append("")
    L.append("| process | RSS idle | RSS after | growth | PSS idle | "
             "PSS after |")
    L.append("|---|---:|---:|---:|---:|---:|")
    after_pids = {pid for _, pid in res["procs_after"]}
    tot = {"ri": 0, "ra": 0, "pi": 0, "pa": 0}
    worst = 0
    for name, pid in res["procs"]:
        a = res["mem_idle"].get(pid, {})
        b = res["mem_after"].get(pid, {})
        ri, ra = a.get("rss"), b.get("rss")
        pi, pa = a.get("pss"), b.get("pss")
        gone = pid not in after_pids
        growth = (ra - ri) if ri is not None and ra is not None else None
        if growth is not None and name != "master":
            worst = max(worst, growth)
        for k, v in (("ri", ri), ("ra", ra), ("pi", pi), ("pa", pa)):
            tot[k] += v or 0
        L.append("| %s (pid %d)%s | %s | %s | %s | %s | %s |" % (
            name, pid, " — replaced during the run" if gone else "",
            kb(ri), kb(ra), kb(growth, sign=True), kb(pi), kb(pa)))
    L.append("| **all shortd processes** | %s | %s | | %s | %s |" % (
        kb(tot["ri"]), kb(tot["ra"]), kb(tot["pi"]), kb(tot["pa"])))
    L.append("")
    L.append("Targets: all shortd processes under %.0f MB RSS at idle: "
             "%.1f MB, %s (RSS counts shared library pages once per "
             "process; PSS shares them out: %.1f MB). No worker grows more "
             "than %.0f MB: largest growth %.2f MB, %s." % (
                 TARGETS["idle_mb"], tot["ri"] / 1024,
                 verdict(tot["ri"] / 1024 < TARGETS["idle_mb"]),
                 tot["pi"] / 1024, TARGETS["growth_mb"], worst / 1024,
                 verdict(worst / 1024 <= TARGETS["growth_mb"])))
    L.append("")

    # Sweep.
    L.append("## Connections sweep (redirect over %s links vs nginx alone, "
             "medians of %d rounds)" % (nl, args.sweep_rounds))
    L.append("")
    L.append("| connections | nginx req/s | nginx p99 | redirect req/s | "
             "redirect p99 | FastCGI conns | ratio |")
    L.append("|---:|---:|---:|---:|---:|---:|---:|")
    for c, n, r in res["sweep"]:
        L.append("| %d | %.0f | %s | %.0f | %s | %s | %.3f |" % (
            c, n["rps"], fmt_us(n["p99_us"]), r["rps"], fmt_us(r["p99_us"]),
            r["sample"], r["ratio"]))
    L.append("")
    if res.get("profile"):
        L.append("## Where a redirect's CPU goes (perf, cpu-clock "
                 "samples, -c32, %s links)" % nl)
        L.append("")
        L.append("```")
        L.append(res["profile"].rstrip())
        L.append("```")
        L.append("")
    errs = res["nginx_errors"]
    L.append("nginx error log: %s" % (
        "no errors." if not errs else "%d error lines, e.g. `%s`" % (
            len(errs), errs[0][:200])))
    L.append("")
    L.append("Plot: %s. Bench took %.0f s." % (
        os.path.relpath(args.png, TOP), res["elapsed"]))
    L.append("")
    return "\n".join(L)


def kb(v, sign=False):
    if v is None:
        return "-"
    return ("%+.2f MB" if sign else "%.1f MB") % (v / 1024)


def plot(res, png, workdir):
    data = os.path.join(workdir, "sweep.dat") if os.path.isdir(workdir) \
        else None
    if data is None:
        data = tempfile.mktemp(prefix="shortd-sweep-", suffix=".dat")
    with open(data, "w") as f:
        f.write("# conns nginx_rps nginx_p99_ms redirect_rps "
                "redirect_p99_ms\n")
        for c, n, r in res["sweep"]:
            f.write("%d %.1f %.3f %.1f %.3f\n" % (
                c, n["rps"], n["p99_us"] / 1e3, r["rps"], r["p99_us"] / 1e3))
    gp = """
set terminal pngcairo size 1000,420 font ",10"
set output '%(png)s'
set multiplot layout 1,2 title "shortd redirect (%(nl)s links) vs nginx alone, wrk -t2"
set logscale x 2
set xrange [0.8:160]
set xtics (1, 8, 32, 128)
set xlabel "connections"
set key top left
set grid
set ylabel "requests/s"
set yrange [0:*]
plot '%(data)s' using 1:2 with linespoints lw 2 title "nginx alone", \\
     '' using 1:4 with linespoints lw 2 title "shortd redirect"
set ylabel "p99 latency (ms)"
set logscale y
set yrange [*:*]
plot '%(data)s' using 1:3 with linespoints lw 2 title "nginx alone", \\
     '' using 1:5 with linespoints lw 2 title "shortd redirect"
unset multiplot
""" % {"png": png, "data": data, "nl": "{:,}".format(res["nlinks"])}
    p = subprocess.run(["gnuplot"], input=gp, text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        say("gnuplot failed:\n" + p.stdout)
    try:
        os.unlink(data)
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main())
