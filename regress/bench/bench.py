#!/usr/bin/python3
"""Benchmarks of shortd against the real stack, with nginx alone as the
yardstick (`make bench`; never part of `make check`).

    bench.py --shortd ./shortd --hashtime build/bench/hashtime
             [--duration 5] [--rounds 5] [--warmup 3] [--links 10000000]
             [--traffic both|uniform|zipf] [--buffer-pool-mb MB]
             [--sweep 1,8,32,128] [--static-pools N] [--set KEY=VALUE]
             [--out regress/bench/results.md] [--png regress/bench/results.png]

It starts the same private stack as the e2e tests (regress/stack.py:
MariaDB, shortd, nginx on private sockets and ports) with the release
build, plus one extra server in the same nginx on a side port that
answers `return 301` itself: "nginx alone", the ceiling of anything
behind that nginx.  MariaDB gets the settings an operator would give
it for the largest table (a buffer pool that holds it, a 1 GiB redo
log: docs/performance.md).  Then:

 1. three users through the API (the list owner, the creator, the one
    who logs in) and 1,000 links of the list owner by multi-row INSERT;
 2. for each table size (1k, 1M, 10M: the list owner's links, then
    bulk links added by LOAD DATA LOCAL INFILE up to --links): rounds
    of [nginx alone, redirect with uniform ids, redirect with Zipf ids
    (s = 1, ranks shuffled over the table)], with the redirect cache's
    hits and MariaDB's statements and row writes per redirect; at 1M
    also create, list and login, and one argon2id verification timed
    per round by hashtime (shortd's own password.c);
 3. a sweep of nginx alone and redirect (uniform, the whole table) over
    1/8/32/128 connections;
 4. RSS (and PSS) of every shortd process at idle before and after the
    runs, each worker's private RSS after every run, the CPU time and
    context switches per request of nginx, shortd and mariadbd, and how
    the loaded pool's workers spent the runs.

The pools are the shipped ones (etc/shortd.conf: dynamic, 2..8 workers
each, grown and shrunk by the master as load comes and goes) unless
--static-pools N or --set says otherwise; every per-process figure is
taken so that workers started or retired mid-run are counted (see
Watch and shortd_ticks), and the pool's size during each run is
reported.

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
import threading
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
    "zipf": 0.45,           # x nginx alone, Zipf traffic, 1M and 10M
    "uniform_flat": 0.9,    # uniform 10M / uniform 1M
    "uniform": 0.25,        # x nginx alone, uniform traffic, 10M
    "cache_mb": 100.0,      # all shortd processes with the cache filled
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
        self.nginx_extra = ""       # directives for the server block

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
        if self.nginx_extra:
            text = text.replace("fastcgi_intercept_errors off;",
                                "fastcgi_intercept_errors off;\n\t\t" +
                                self.nginx_extra, 1)
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
            "pss": proc_kb(pid, "Pss", "smaps_rollup"),
            "shmem": proc_kb(pid, "RssShmem")}


def private_rss(pid):
    """RSS less the shared memory the master mapped (the scoreboard and
    the redirect cache, RssShmem): what the worker itself holds."""
    rss, shm = proc_kb(pid, "VmRSS"), proc_kb(pid, "RssShmem")
    return None if rss is None else rss - (shm or 0)


def read_stat(path):
    """The fields of a /proc stat file after the command name: [k] is
    field k + 3 of proc(5) (utime 14 -> [11], cutime 16 -> [13],
    starttime 22 -> [19]), or None."""
    try:
        with open(path) as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def cpu_ticks(pid):
    """utime + stime of pid (all its threads, living and ended) in clock
    ticks, or None."""
    st = read_stat("/proc/%d/stat" % pid)
    try:
        return int(st[11]) + int(st[12])
    except (TypeError, IndexError, ValueError):
        return None


def shortd_ticks(master):
    """utime + stime of the master and of every child it has now, plus
    its cutime + cstime: what the children it has reaped used.  A worker
    that exits between two calls moves its ticks from the one sum to the
    other, so the difference of two calls counts every process that
    lived in between.  The child list is read between two reads of the
    master's cutime and read again if a child was reaped meanwhile (it
    would count twice, or not at all).  None if it cannot be read."""
    for _ in range(50):
        m0 = read_stat("/proc/%d/stat" % master)
        kids = stackmod.children_of(master)
        t = sum(cpu_ticks(k) or 0 for k in kids)
        m1 = read_stat("/proc/%d/stat" % master)
        if m0 is None or m1 is None:
            return None
        if m0[13:15] == m1[13:15]:
            return sum(int(x) for x in m1[11:15]) + t
    return None


def boottime():
    """Seconds on the clock /proc/PID/stat's starttime counts in."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def task_counters(pid, sched):
    """{(tid, starttime): [context switches, ns on a CPU, ns runnable
    waiting for one]} of every thread of pid (the last two only if
    sched, else 0)."""
    out = {}
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        d = "/proc/%d/task/%s/" % (pid, tid)
        st = read_stat(d + "stat")
        sw = 0
        run = wait = 0
        try:
            with open(d + "status") as f:
                for line in f:
                    if "ctxt_switches:" in line:
                        sw += int(line.split()[1])
            if sched:
                with open(d + "schedstat") as f:
                    a = f.read().split()
                run, wait = int(a[0]), int(a[1])
            key = (int(tid), int(st[19]))
        except (OSError, IndexError, ValueError, TypeError):
            continue        # ended while being read
        out[key] = [sw, run, wait]
    return out


class Watch:
    """What the processes behind one shortd run do during it, read every
    PERIOD seconds from start() to stop() in a thread:

    - size: how many workers pool has (by /proc, each poll);
    - switches[group]: context switches of every thread of nginx, shortd
      (master, status process, workers) and mariadbd: per thread, its
      last reading less its first (0 for a thread born after start());
      a thread that ends is counted up to its last reading, PERIOD at
      most before its end (ended: how many did);
    - run, wait, span: of the pool's workers, ns on a CPU and ns
      runnable but waiting for one, summed over the workers alive at
      any time during the run, each from start() (or its birth) to its
      last reading, and span the sum of those lifetimes in s;
    - ticks[group]: CPU ticks between start() and stop(), shortd's
      by shortd_ticks(); None where a reading failed or went backwards.
    """

    PERIOD = 0.25

    def __init__(self, s, pool):
        self.s = s
        self.pool = pool
        self.comm = stackmod.POOL_COMM[pool]
        self.hz = os.sysconf("SC_CLK_TCK")
        self.first = {}     # (group, tid, starttime) -> (t, counters)
        self.last = {}
        self.workers = set()    # keys of the pool's workers
        self.sizes = []
        self.polls = 0
        self.error = None
        self.done = threading.Event()

    def groups(self):
        s = self.s
        return {
            "nginx": [s.nginx_proc.pid] + stackmod.children_of(
                s.nginx_proc.pid),
            "shortd": [s.master_pid] + stackmod.children_of(s.master_pid),
            "mariadbd": [s.db_proc.pid],
        }

    def read_ticks(self):
        g = self.groups()
        return {"nginx": sum(cpu_ticks(p) or 0 for p in g["nginx"]),
                "shortd": shortd_ticks(self.s.master_pid),
                "mariadbd": cpu_ticks(self.s.db_proc.pid)}

    def poll(self):
        now = boottime()
        n = 0
        for g, pids in self.groups().items():
            for pid in pids:
                mine = g == "shortd" and stackmod.proc_comm(pid) == \
                    self.comm
                n += mine
                for (tid, start), c in task_counters(pid, mine).items():
                    key = (g, tid, start)
                    if key not in self.first:
                        self.first[key] = (now, c, self.polls == 0)
                    self.last[key] = (now, c)
                    if mine:
                        self.workers.add(key)
        self.sizes.append(n)
        self.polls += 1
        return now

    def loop(self):
        try:
            while not self.done.wait(self.PERIOD):
                self.poll()
        except Exception as e:      # reported by stop()
            self.error = e

    def start(self):
        self.t0 = self.poll()
        self.ticks0 = self.read_ticks()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.ticks1 = self.read_ticks()
        self.done.set()
        self.thread.join()
        if self.error is not None:
            raise self.error
        self.t1 = self.poll()
        self.ticks = {}
        for g in self.ticks0:
            a, b = self.ticks0[g], self.ticks1[g]
            self.ticks[g] = (b - a if a is not None and b is not None
                             and b >= a else None)
        self.switches = {"nginx": 0, "shortd": 0, "mariadbd": 0}
        self.ended = 0
        self.run = self.wait = 0
        self.span = 0.0
        for key, (t, c) in self.last.items():
            t_first, c0, at_start = self.first[key]
            base = c0 if at_start else [0, 0, 0]
            d = [x - y for x, y in zip(c, base)]
            assert min(d) >= 0, ("counters of %r went back: %r -> %r"
                                 % (key, base, c))
            self.switches[key[0]] += d[0]
            if t < self.t1:
                self.ended += 1
            if key in self.workers:
                self.run += d[1]
                self.wait += d[2]
                born = self.t0 if at_start else max(self.t0,
                                                    key[2] / self.hz)
                self.span += max(0.0, t - born)
        return self


def shortd_memory(s):
    """[(name, pool, pid, {"rss": KiB, "pss": KiB})] of every shortd
    process now: the master, the status process, each pool's workers."""
    out = [("master", None, s.master_pid, memory(s.master_pid))]
    for pool in ("status", "auth", "shortener"):
        for i, pid in enumerate(sorted(s.workers(pool))):
            name = ("status process" if pool == "status" else
                    "%s worker" % pool)
            out.append((name, pool, pid, memory(pid)))
    return out


def pool_bounds(conf, pool):
    """(workers_min, workers_max, idle size) of a pool as configured.
    A static pool keeps N; a dynamic one retires idle workers only while
    more than spare_max are free (daemon/master.c, master_scale), so once
    grown it settles at max(workers_min, spare_max), not workers_min."""
    n = int(conf.get(pool + "_workers", "0") or 0)
    if n > 0:
        return n, n, n
    lo = int(conf[pool + "_workers_min"])
    hi = int(conf[pool + "_workers_max"])
    return lo, hi, max(lo, min(hi, int(conf[pool + "_spare_max"])))


# An idle worker is retired after RETIRE_IDLE_MS (1 s), one per TICK_MS
# (0.1 s) of the master: a pool whose size has not changed for this long
# with nothing to do has settled.
SETTLE_QUIET_S = 2.5


# Workers' RSS after a run: read this often for this long.  A worker
# hands freed memory back after 0.5 s idle (TRIM_IDLE_MS, worker.c) and
# is retired after 1 s idle (RETIRE_IDLE_MS, master.c): readings up to
# 1.2 s after the run catch each one trimmed and before it goes, even if
# it was finishing requests for a few tenths of a second more.
RSS_EVERY_S = 0.05
RSS_FOR_S = 1.2


def wait_idle(s, conf, timeout=30.0):
    """Until no pool has changed size for SETTLE_QUIET_S and each is at
    most its idle size -> ({pool: workers}, seconds waited, settled)."""
    t0 = last_change = time.monotonic()
    last = None
    while True:
        sizes = {p: len(s.workers(p)) for p in ("auth", "shortener")}
        now = time.monotonic()
        if sizes != last:
            last, last_change = sizes, now
        if (now - last_change >= SETTLE_QUIET_S and
                all(n <= pool_bounds(conf, p)[2] for p, n in sizes.items())):
            return sizes, now - t0, True
        if now - t0 > timeout:
            return sizes, now - t0, False
        time.sleep(0.1)


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
    return {
        "nginx": [s.nginx_proc.pid] + stackmod.children_of(s.nginx_proc.pid),
        "shortd workers": s.workers("shortener") + s.workers("auth"),
        "mariadbd": [s.db_proc.pid],
    }


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


# The bench's bulk links: index k is the id base62(BULK_OFFSET + k *
# BULK_STRIDE) in 7 characters, so ids are spread over the whole key
# space as shortd's random ones are, sort as their indexes do (a load
# in index order appends to the primary key), and need no list in
# memory (redirect.lua makes them the same way).  Up to 100 M links.
BULK_OFFSET = 104729
BULK_STRIDE = 62 ** 7 // 100000000
BULK_CHUNK = 1000000        # rows per LOAD DATA (one transaction each)
MAIN_LINKS = 1000000        # create, list and login run at this point
LOG_FILE_MB = 1024          # innodb_log_file_size for the run


def bulk_id(k):
    x = BULK_OFFSET + k * BULK_STRIDE
    out = []
    for _ in range(7):
        x, d = divmod(x, 62)
        out.append(B62[d])
    return "".join(reversed(out))


def coprime(n):
    """A multiplier that permutes 0..n-1 (redirect.lua's Zipf ranks)."""
    for a in (1000003, 999983, 999979, 999961):
        if n % a:
            return a
    raise ValueError(n)


def scale_points(links, list_links):
    """Table sizes measured: the list owner's links alone, then 1 M and
    10 M below links, then links."""
    pts = {list_links, links}
    pts.update(p for p in (1000000, 10000000) if list_links < p < links)
    return sorted(pts)


def links_label(n):
    for unit, div in (("M", 1000000), ("k", 1000)):
        if n >= div and n % div == 0:
            return "%d%s" % (n // div, unit)
    return "{:,}".format(n)


# The search bench's links (issue 16): the first SEARCH_LINKS bulk links
# have a title of two made-up words, one of SEARCH_RARE (each in about
# SEARCH_LINKS / SEARCH_RARE titles) and one of SEARCH_COMMON, and two
# tags: "t<k mod 101>" (about 1 % of them each) and "c<k mod 7>" (1/7).
SEARCH_LINKS = 1000000
SEARCH_RARE = 2000
SEARCH_COMMON = 40
SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "sa", "te", "vo", "zi", "ba",
             "de", "fu", "go", "hi", "ju", "pe", "qu", "ri", "so", "tu")


def search_word(j):
    """A made-up word of three syllables (at least the 3 characters the
    FULLTEXT index keeps), different for each j < 8000."""
    n = len(SYLLABLES)
    return SYLLABLES[j % n] + SYLLABLES[j // n % n] + SYLLABLES[j // n // n % n]


def search_meta(k):
    """(title, [tags]) of bulk link k, or None past SEARCH_LINKS."""
    if k >= SEARCH_LINKS:
        return None
    rare = search_word((k * 7919) % SEARCH_RARE)
    common = search_word(SEARCH_RARE + (k * 104723) % SEARCH_COMMON)
    return "Bench %s %s" % (rare, common), ["t%d" % (k % 101),
                                            "c%d" % (k % 7)]


def load_bulk(s, owner, a, b, workdir):
    """Bulk links a..b-1 of owner by LOAD DATA LOCAL INFILE, in chunks of
    BULK_CHUNK rows in primary key order, with the session settings of a
    bulk load (no unique or foreign key checks: the rows are known to be
    new and their owner to exist; IGNORE skips the odd id that a create
    run happened to draw).  The first SEARCH_LINKS get a title and tags
    (url_tags rows, loaded the same way)."""
    path = os.path.join(workdir, "bulk.tsv")
    tpath = os.path.join(workdir, "tags.tsv")
    now = int(time.time() * 1e6)
    conn = s.db_connect(local_infile=True, autocommit=False)
    try:
        with conn.cursor() as c:
            c.execute("SET unique_checks = 0")
            c.execute("SET foreign_key_checks = 0")
            for lo in range(a, b, BULK_CHUNK):
                hi = min(b, lo + BULK_CHUNK)
                ntags = 0
                with open(path, "w") as f, open(tpath, "w") as g:
                    for k in range(lo, hi):
                        i = bulk_id(k)
                        meta = search_meta(k)
                        f.write("%s\t%s\thttps://example.com/bench/bulk/%d/"
                                "%s\t%d\t%d\t%s\t%s\n" % (
                                    i, owner, k, i, now + k, now + k,
                                    meta[0] if meta else "\\N",
                                    "|".join(meta[1]) if meta else "\\N"))
                        for tag in meta[1] if meta else ():
                            g.write("%s\t%s\t%d\t%s\n" % (owner, tag,
                                                           now + k, i))
                            ntags += 1
                c.execute("LOAD DATA LOCAL INFILE %s IGNORE INTO TABLE urls "
                          "FIELDS TERMINATED BY '\\t' "
                          "LINES TERMINATED BY '\\n' "
                          "(id, `user`, value, created_us, updated_us, "
                          "title, tags)", (path,))
                if ntags:
                    c.execute("LOAD DATA LOCAL INFILE %s IGNORE INTO TABLE "
                              "url_tags FIELDS TERMINATED BY '\\t' "
                              "LINES TERMINATED BY '\\n' "
                              "(`user`, tag, created_us, id)", (tpath,))
                conn.commit()
                say("  %d rows loaded" % (hi - a))
    finally:
        conn.close()
    os.unlink(path)
    os.unlink(tpath)


# The searches measured at SEARCH_LINKS (GET / of the bulk links' owner,
# the first page of 100): (label, a function of a random generator
# giving the query string).
SEARCHES = [
    ("`?q=` a rare word (~500 links)",
     lambda r: "q=" + search_word(r.randrange(SEARCH_RARE))),
    ("`?q=` a common word (~25,000 links)",
     lambda r: "q=" + search_word(SEARCH_RARE + r.randrange(SEARCH_COMMON))),
    ("`?q=` two words (rare and common)",
     lambda r: "q=%s+%s" % (search_word(r.randrange(SEARCH_RARE)),
                            search_word(SEARCH_RARE +
                                        r.randrange(SEARCH_COMMON)))),
    ("`?tag=` one tag (~10,000 links)",
     lambda r: "tag=t%d" % r.randrange(101)),
    ("`?tag=&tag=` two tags (~1,400 links)",
     lambda r: "tag=t%d&tag=c%d" % (r.randrange(101), r.randrange(7))),
    ("`?tag=` one tag, `sort=-visits`",
     lambda r: "tag=t%d&sort=-visits" % r.randrange(101)),
]
SEARCH_QUERIES = 5000       # distinct query strings per search, drawn
# Searches are people at a page, not a flood: 4 at once, so p99 is the
# query's own time and not the queue's (at -c32 on 2 cores any request
# that costs 2 ms queues behind 31 others).
SEARCH_CONNS = 4


def search_files(workdir):
    """One file of query paths per search -> [(label, path)]."""
    rnd = random.Random(16)
    out = []
    for n, (label, make) in enumerate(SEARCHES):
        path = os.path.join(workdir, "search-%d.txt" % n)
        with open(path, "w") as f:
            for _ in range(SEARCH_QUERIES):
                f.write("/?limit=100&%s\n" % make(rnd))
        out.append((label, path))
    return out


def table_mb(s):
    """The urls table and its indexes on disk, MB (InnoDB's estimate)."""
    s.sql("ANALYZE TABLE urls")
    row = s.sql("SELECT data_length + index_length FROM "
                "information_schema.tables WHERE table_schema = DATABASE() "
                "AND table_name = 'urls'")
    return int(row[0][0]) / 1e6


def cache_counts(s):
    """(hits, misses) of the redirect cache so far, from /metrics."""
    r = s.http("GET", "/metrics", timeout=10)
    out = [0, 0]
    for line in r.text.splitlines():
        for k, name in enumerate(("shortd_redirect_cache_hits_total ",
                                  "shortd_redirect_cache_misses_total ")):
            if line.startswith(name):
                out[k] = float(line.split()[1])
    return out


# What the database did, from SHOW GLOBAL STATUS: statements executed
# (prepared and not) and rows read and written.
DB_COUNTERS = ("Com_stmt_execute", "Handler_read_key", "Handler_update",
               "Handler_write", "Handler_delete")


def db_counts(s):
    got = {k.lower(): v for k, v in s.sql("SHOW GLOBAL STATUS")}
    return {k: int(got.get(k.lower(), 0)) for k in DB_COUNTERS}


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
        "workers": ((min(r["workers"][0] for r in runs),
                     max(r["workers"][1] for r in runs))
                    if all("workers" in r for r in runs) else None),
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
    ap.add_argument("--links", type=int, default=10000000,
                    help="the largest table measured (points: the list "
                    "owner's links, 1M and 10M below it, and this)")
    ap.add_argument("--traffic", choices=("both", "uniform", "zipf"),
                    default="both", help="which ids the redirects ask "
                    "for: uniform, or Zipf (s = 1, hot links spread "
                    "over the table); both by default")
    ap.add_argument("--list-links", type=int, default=1000)
    ap.add_argument("--buffer-pool-mb", type=int, default=None,
                    help="InnoDB buffer pool for the run (default: sized "
                    "as an operator would, to hold the table at --links; "
                    "0: the stack's)")
    ap.add_argument("--sweep", default="1,8,32,128")
    ap.add_argument("--sweep-rounds", type=int, default=3)
    ap.add_argument("--variant-rounds", type=int, default=3,
                    help="rounds of the nginx-to-worker variants (unix "
                    "socket or TCP, fastcgi_buffering, workers per "
                    "core); 0: none")
    ap.add_argument("--analytics-rounds", type=int, default=3,
                    help="rounds of visit analytics on and off (after a "
                    "restart each), redirects over 1k and 1M links; 0: "
                    "skip")
    ap.add_argument("--search-rounds", type=int, default=3,
                    help="rounds of each search at 1M links (issue 16); "
                    "0: skip")
    ap.add_argument("--import-rounds", type=int, default=2,
                    help="100k-row imports at 1M links (issue 16); 0: skip")
    ap.add_argument("--static-pools", type=int, metavar="N",
                    help="static pools of N auth and N shortener workers "
                    "(auth_workers = shortener_workers = N); by default "
                    "the pools are dynamic as shipped (etc/shortd.conf)")
    ap.add_argument("--set", action="append", default=[],
                    metavar="KEY=VALUE", help="shortd.conf override "
                    "(applied after --static-pools)")
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
    # The pools as shipped (etc/shortd.conf: dynamic, 2..8 workers)
    # unless asked otherwise.
    overrides = {"log_level": "warn"}
    if args.static_pools is not None:
        if args.static_pools < 1:
            sys.exit("bench: --static-pools wants N >= 1")
        overrides["auth_workers"] = str(args.static_pools)
        overrides["shortener_workers"] = str(args.static_pools)
    for kv in args.set:
        k, _, v = kv.partition("=")
        overrides[k] = v

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

    # The settings an operator gives MariaDB for a table of this size
    # (docs/performance.md): a buffer pool that holds the urls table and
    # its indexes (about 300 bytes a link), and a redo log large enough
    # that a bulk load or a burst of writes does not wait for
    # checkpoints.
    if args.buffer_pool_mb is None:
        args.buffer_pool_mb = max(256, -(-args.links * 400 // 2 ** 20 //
                                          1024) * 1024)
    if args.buffer_pool_mb > 0:
        s.sql("SET GLOBAL innodb_buffer_pool_size = %s",
              (args.buffer_pool_mb * 1024 * 1024,))
    s.sql("SET GLOBAL innodb_log_file_size = %s", (LOG_FILE_MB << 20,))
    res["log_file_mb"] = int(s.sql(
        "SELECT @@innodb_log_file_size")[0][0]) >> 20
    res["buffer_pool_mb"] = int(s.sql(
        "SELECT @@innodb_buffer_pool_size")[0][0]) // (1024 * 1024)

    say("waiting for the pools to settle")
    res["idle_before"] = wait_idle(s, conf)
    res["mem_before"] = shortd_memory(s)

    # RSS of every worker after each run against the stack, by pid:
    # {"pool", "max" KiB}.  Right when wrk stops, workers may still be
    # finishing requests and hold what they freed until idle for 0.5 s
    # (a login's argon2 block is 19 MB), and a worker idle for 1 s may
    # be retired: so each worker's figure for a run is the smallest of
    # readings every RSS_EVERY_S for RSS_FOR_S after it, and peak keeps
    # the largest of those over the runs.
    peak = {}

    def rss_sample():
        low = {}
        end = time.monotonic() + RSS_FOR_S
        while True:
            for pool in ("auth", "shortener"):
                for pid in s.workers(pool):
                    v = private_rss(pid)
                    if v is not None:
                        low[pid] = (pool, min(v, low.get(pid, (0, v))[1]))
            if time.monotonic() >= end:
                break
            time.sleep(RSS_EVERY_S)
        for pid, (pool, v) in low.items():
            x = peak.setdefault(pid, {"pool": pool, "max": v})
            x["max"] = max(x["max"], v)

    # Per measured benchmark: CPU ticks by group, requests, context
    # switches, the loaded pool's schedstat and lifetimes; per run of
    # shortd: the pool's size (min, max) while it ran.
    acc = {}

    def shortd_run(script, url, wargs, pool="shortener", key=None,
                   conns=None, duration=None, sample=None):
        """One wrk run against shortd, watched (Watch); if key is given
        its figures are added to acc[key]."""
        if sample is None:
            sample = lambda: fastcgi_conns(s, pool)
        watch = Watch(s, pool).start()
        e0 = time.monotonic()
        try:
            r = w.run(script, url, wargs, conns=conns, duration=duration,
                      sample=sample)
        finally:
            watch.stop()
        wall = time.monotonic() - e0
        rss_sample()
        r["workers"] = (min(watch.sizes), max(watch.sizes))
        if key is None:
            return r
        a = acc.setdefault(key, {"ticks": {}, "requests": 0,
                                 "switches": {}, "ended": 0, "run": 0,
                                 "wait": 0, "span": 0.0, "wall": 0.0,
                                 "pool": pool})
        for g, v in watch.ticks.items():
            old = a["ticks"].get(g, 0)
            a["ticks"][g] = None if old is None or v is None else old + v
        for g, v in watch.switches.items():
            a["switches"][g] = a["switches"].get(g, 0) + v
        a["requests"] += r["requests"]
        a["ended"] += watch.ended
        a["run"] += watch.run
        a["wait"] += watch.wait
        a["span"] += watch.span
        a["wall"] += wall
        return r

    # Users through the API, links of the list owner by SQL.
    list_user, list_pw, list_tok = s.new_user("bench-list")
    create_user, create_pw, create_tok = s.new_user("bench-create")
    login_user, login_pw, _ = s.new_user("bench-login")
    bulk_user, _, bulk_tok = s.new_user("bench-bulk")
    small = load_small(s, list_user, args.list_links, seen)
    ids1k = os.path.join(workdir, "ids-1k.txt")
    write_ids(ids1k, small)
    probe = small[0]
    r = s.http("GET", "/" + probe)
    assert r.status_code == 301, "GET /%s: %d %s" % (probe, r.status_code,
                                                     r.text)

    redirect_url = s.url
    models = ["uniform", "zipf"] if args.traffic == "both" else \
        [args.traffic]
    points = scale_points(args.links, args.list_links)
    main_pt = MAIN_LINKS if MAIN_LINKS in points else points[-1]
    res["points"], res["models"], res["main_links"] = points, models, main_pt
    res["load"], res["scale"] = [], {}
    runs = {k: [] for k in ("create", "create_relaxed", "list", "login")}
    hashtime = [args.hashtime, conf["argon2_memory"],
                conf["argon2_iterations"], conf["argon2_parallelism"]]
    hashes, hash_walls, fsyncs = [], [], []
    loaded = 0                  # bulk links in the table

    def traffic(n_links, model):
        """wrk arguments for redirects under model over the table of
        n_links: the list owner's ids (1k phase) or the bulk ones."""
        if n_links <= args.list_links:
            return [model, ids1k, "7919", "13"]
        n = n_links - args.list_links
        return [model, "bulk:%d:%d:%d" % (n, BULK_OFFSET, BULK_STRIDE),
                str(coprime(n)), str(n // 3)]

    def redirect_run(n_links, model, key=None, duration=None):
        c0, d0 = cache_counts(s), db_counts(s)
        r = shortd_run("redirect", redirect_url, traffic(n_links, model),
                       key=key, duration=duration)
        c1, d1 = cache_counts(s), db_counts(s)
        r["cache"] = [c1[k] - c0[k] for k in range(2)]
        r["db"] = {k: d1[k] - d0[k] for k in d1}
        return r

    for pt in points:
        if pt > args.list_links:
            want = pt - args.list_links
            say("loading %d links by LOAD DATA LOCAL INFILE (%d to %d)" % (
                want - loaded, loaded + args.list_links, pt))
            t0 = time.time()
            load_bulk(s, bulk_user, loaded, want, workdir)
            loaded = want
            res["load"].append((pt, time.time() - t0))
            r = s.http("GET", "/" + bulk_id(want - 1))
            assert r.status_code == 301, "GET bulk link %d: %d" % (
                want - 1, r.status_code)
        res["nlinks"] = int(s.sql("SELECT COUNT(*) FROM urls")[0][0])
        res["table_mb"] = table_mb(s)
        label = links_label(pt)
        say("phase %s: warm-up" % label)
        w.run("nginx", s.side_url, duration=args.warmup)
        for m in models:
            redirect_run(pt, m, duration=args.warmup)
        main = pt == main_pt
        if main:
            shortd_run("create", s.url, [create_tok], duration=args.warmup)
            shortd_run("list", s.url, [list_tok], duration=args.warmup)
            shortd_run("login", s.url, [login_user, login_pw], pool="auth",
                       duration=args.warmup)
        ph = res["scale"][pt] = {"nginx": [], "nlinks": res["nlinks"],
                                 "table_mb": res["table_mb"]}
        for m in models:
            ph[m] = []
        for i in range(args.rounds):
            say("phase %s: round %d/%d" % (label, i + 1, args.rounds))
            ph["nginx"].append(w.run("nginx", s.side_url))
            for m in models:
                ph[m].append(redirect_run(pt, m, key="redirect %d %s" % (
                    pt, m)))
            if not main:
                continue
            runs["create"].append(shortd_run("create", s.url, [create_tok],
                                             key="create"))
            fsyncs.append(fsync_time(s.datadir))
            # The same with the commit's fsync left to a background
            # flush once a second: what shortd does when the disk does
            # not bound it.
            s.sql("SET GLOBAL innodb_flush_log_at_trx_commit = 2")
            try:
                runs["create_relaxed"].append(shortd_run(
                    "create", s.url, [create_tok]))
            finally:
                s.sql("SET GLOBAL innodb_flush_log_at_trx_commit = 1")
            runs["list"].append(shortd_run("list", s.url, [list_tok],
                                           key="list"))
            runs["login"].append(shortd_run("login", s.url,
                                            [login_user, login_pw],
                                            pool="auth", key="login"))
            # CPU time, which other programs on the machine do not
            # stretch (wall-clock time kept for the record).
            out = subprocess.run(hashtime + ["5"], stdout=subprocess.PIPE,
                                 text=True, check=True).stdout.split()
            hashes.append(float(out[4]))
            hash_walls.append(float(out[0]))
        if main:
            # The classic rows of the report: the main phase's nginx and
            # uniform redirect runs.
            runs["nginx"] = ph["nginx"]
            runs["redirect"] = ph[models[0]]
            acc["redirect"] = acc["redirect %d %s" % (pt, models[0])]
        if main and loaded >= min(SEARCH_LINKS, pt - args.list_links) and \
                args.search_rounds > 0:
            res["search"] = search_bench(s, w, bulk_tok, workdir,
                                         args.search_rounds)
            res["search_links"] = loaded
        if main and args.import_rounds > 0:
            res["import"] = import_bench(s, args.import_rounds)
        if pt == points[0]:
            runs["nginx_1k"] = ph["nginx"]
            runs["redirect_1k"] = ph[models[0]]
    res["load_s"] = sum(t for _, t in res["load"])
    # The sweep and the profile: uniform traffic over the whole table.
    idsall = traffic(points[-1], "uniform")
    res["acc"] = acc
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
            rs.append(shortd_run("redirect", redirect_url, idsall,
                                 conns=c))
        n, r = summarize(ns), summarize(rs)
        n["sample"], r["sample"] = None, r["upstream"]
        r["ratio"] = median([b["rps"] / a["rps"] for a, b in zip(ns, rs)])
        res["sweep"].append((c, n, r))

    # Memory at idle with the cache as the runs left it (the variants
    # restart shortd).
    say("waiting for the pools to settle")
    res["idle_after"] = wait_idle(s, conf)
    res["mem_after"] = shortd_memory(s)
    rss_sample()
    if args.variant_rounds > 0:
        # A variant that fails costs its table, not the whole report.
        try:
            res["variants"] = variants(s, w, args, shortd_run,
                                       traffic(args.list_links, "uniform"),
                                       traffic(points[-1], "zipf"))
        except (RuntimeError, stackmod.StackError) as e:
            say("variants failed: %s" % e)
            res["variants_error"] = str(e)[:500]
    if args.analytics_rounds > 0:
        res["analytics_links"] = min(points[-1], 1000000)
        res["analytics"] = variants(
            s, w, args, shortd_run, traffic(args.list_links, "uniform"),
            traffic(res["analytics_links"], "uniform"), table=ANALYTICS,
            rounds=args.analytics_rounds)
        res["visits_growth"] = visits_growth(s)

    # Correctness after the runs: the probe still redirects.
    r = s.http("GET", "/" + probe)
    assert r.status_code == 301, r.status_code
    res["nginx_errors"] = nginx_errors(s)
    res["peak"] = peak
    res["runs"] = runs
    return res


def search_bench(s, w, tok, workdir, rounds):
    """GET / of the bulk links' owner with each of SEARCHES (issue 16):
    [(label, [wrk runs], one of its query paths)].  Each kind is
    checked first to answer 200 (wrk counts any other status as an
    error, reported)."""
    out = []
    for label, path in search_files(workdir):
        with open(path) as f:
            probe = f.readline().strip()
        r = s.http("GET", probe, token=tok)
        assert r.status_code == 200, "GET %s: %d %s" % (
            probe, r.status_code, r.text[:200])
        w.run("search", s.url, [tok, path], conns=SEARCH_CONNS, duration=2)
        runs = []
        for i in range(rounds):
            say("search %s: round %d/%d" % (label, i + 1, rounds))
            runs.append(w.run("search", s.url, [tok, path],
                              conns=SEARCH_CONNS))
        out.append((label, runs, probe))
    return out


IMPORT_ROWS = 100000        # POST /import's most rows per request


def import_bench(s, rounds):
    """POST /import of IMPORT_ROWS rows in shortd's own CSV columns
    (url, title, tags; new random ids), each round by a new user whose
    links are deleted after it -> [(seconds, created, body bytes)]."""
    out = []
    for n in range(rounds):
        user, _, tok = s.new_user("bench-import")
        body = "url,title,tags\r\n" + "".join(
            "https://example.com/bench/import/%d/%d,Imported page %d,"
            "imp|r%d\r\n" % (n, k, k, k % 50) for k in range(IMPORT_ROWS))
        say("import: %d rows, round %d/%d" % (IMPORT_ROWS, n + 1, rounds))
        t0 = time.monotonic()
        r = s.http("POST", "/import", raw=body, token=tok, timeout=600,
                   headers={"Content-Type": "text/csv"})
        dt = time.monotonic() - t0
        assert r.status_code == 200, "import: %d %s" % (r.status_code,
                                                        r.text[:300])
        out.append((dt, r.json()["created"], len(body)))
        s.sql("DELETE FROM urls WHERE `user` = %s", (user,))
    return out


def search_report(L, res, args):
    L.append("## Search at %s links (GET / of one user who owns them, "
             "first page of 100, wrk -c%d, medians of %d rounds)" % (
                 "{:,}".format(res["search_links"]), SEARCH_CONNS,
                 args.search_rounds))
    L.append("")
    L.append("Each request draws its query from 5,000 of the kind "
             "(regress/bench/search.lua); titles are two made-up words, "
             "one of %d rare and one of %d common, tags `t<k mod 101>` "
             "and `c<k mod 7>` (bench.py, SEARCHES). Target: p99 < 50 ms "
             "(issue 16)." % (SEARCH_RARE, SEARCH_COMMON))
    L.append("")
    L.append("| search | e.g. | req/s | p50 | p99 | errors | p99 < 50 ms |")
    L.append("|---|---|---:|---:|---:|---:|---|")
    for label, runs, probe in res["search"]:
        m = summarize(runs)
        L.append("| %s | `%s` | %.0f | %s | %s | %d | %s |" % (
            label, probe, m["rps"], fmt_us(m["p50_us"]),
            fmt_us(m["p99_us"]), sum(r["errors"] for r in runs),
            verdict(m["p99_us"] < 50000)))
    L.append("")


# What may cost between nginx and the worker, tried in turn (issue 17):
# (label, shortd.conf overrides, nginx directives).  "%(port)d" is a
# free TCP port.
VARIANTS = [
    ("as shipped: unix socket, kept connections, dynamic pool 2..8", {},
     ""),
    ("TCP on 127.0.0.1", {"shortener_listen": "127.0.0.1:%(port)d"}, ""),
    ("fastcgi_buffering off", {}, "fastcgi_buffering off;"),
    ("1 worker (static)", {"shortener_workers": "1"}, ""),
    ("2 workers (static, one per core)", {"shortener_workers": "2"}, ""),
    ("4 workers (static, two per core)", {"shortener_workers": "4"}, ""),
]


# Visit analytics (issue 15) on, as shipped, and off, in the same run.
ANALYTICS = [
    ("analytics on (as shipped)", {}, ""),
    ("analytics off", {"analytics": "no"}, ""),
]


def visits_growth(s):
    """What the visit records of the whole run take: rows, the size of
    visits.ibd and InnoDB's data and index lengths -> dict."""
    s.sql("ANALYZE TABLE visits")
    rows = int(s.sql("SELECT COUNT(*) FROM visits")[0][0])
    data, index = s.sql(
        "SELECT data_length, index_length FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = 'shortd' AND TABLE_NAME = 'visits'")[0]
    path = os.path.join(s.datadir, "shortd", "visits.ibd")
    size = os.path.getsize(path) if os.path.exists(path) else None
    return {"rows": rows, "file": size, "data": int(data),
            "index": int(index)}


def variants(s, w, args, shortd_run, small, big, table=None,
             rounds=None):
    """Rounds of, for each variant: restart shortd and nginx with it,
    then [nginx alone, redirect over the 1k links (cache hits: the
    nginx-worker path alone), redirect with Zipf ids over the whole
    table].  -> [(label, {"nginx", "hit", "zipf": [runs]})]."""
    table = VARIANTS if table is None else table
    rounds = args.variant_rounds if rounds is None else rounds
    base = dict(s.base_overrides)
    out = [(v[0], {"nginx": [], "hit": [], "zipf": []}) for v in table]
    try:
        for i in range(rounds):
            for (label, conf, extra), (_, r) in zip(table, out):
                say("variant %r, round %d/%d" % (label, i + 1, rounds))
                s.stop_nginx()
                s.base_overrides = dict(base)
                s.base_overrides.update({k: v % {
                    "port": stackmod.free_port()} for k, v in conf.items()})
                s.nginx_extra = extra
                s.restart_shortd()
                s.start_nginx()
                w.run("redirect", s.url, small, duration=args.warmup)
                r["nginx"].append(w.run("nginx", s.side_url))
                r["hit"].append(shortd_run("redirect", s.url, small))
                r["zipf"].append(shortd_run("redirect", s.url, big))
    finally:
        s.stop_nginx()
        s.base_overrides = base
        s.nginx_extra = ""
        s.restart_shortd()
        s.start_nginx()
    return out


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


def profile(s, w, url, wargs, workdir):
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
    w.run("redirect", url, wargs, duration=secs + 2)
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


def span_str(w):
    """A pool's size over runs, (min, max) -> "2" or "2–6"."""
    if w is None:
        return ""
    return "%d" % w[0] if w[0] == w[1] else "%d–%d" % w


def mem_growth(res):
    """Each worker's RSS growth over the runs, KiB: [(growth, pid, pool,
    against)], largest first; against says what baseline it is
    measured from."""
    before = {pid: (pool, m["rss"]) for _, pool, pid, m in
              res["mem_before"] if pool in ("auth", "shortener") and
              m["rss"] is not None}
    after = {pid: (pool, m["rss"]) for _, pool, pid, m in
             res["mem_after"] if pool in ("auth", "shortener") and
             m["rss"] is not None}
    base = {}
    for pool, v in before.values():
        base[pool] = min(base.get(pool, v), v)
    top = {}
    for pid, x in res["peak"].items():
        top[pid] = (x["pool"], x["max"])
    for pid, (pool, v) in after.items():
        top[pid] = (pool, max(v, top.get(pid, (pool, 0))[1]))
    out = []
    for pid, (pool, v) in top.items():
        if pid in before:
            out.append((v - before[pid][1], pid, pool, "own idle RSS"))
        elif pool in base:
            out.append((v - base[pool], pid, pool, "pool's idle RSS"))
    out.sort(reverse=True)
    return out, before, after, base


def report(res, args):
    runs = res["runs"]
    conf = res["conf"]
    acc = res["acc"]
    cores = os.cpu_count()
    hz = os.sysconf("SC_CLK_TCK")
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
    # Like every ratio: the median of the rounds' (login req/s over
    # cores / that round's hash time).
    login_ratio = median([r["rps"] * h / cores for r, h in
                          zip(runs["login"], res["hashes"])])
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
            return "%s (static)" % n
        lo, hi = conf.get(name + "_workers_min", "?"), \
            str(conf.get(name + "_workers_max", "?"))
        if hi == "0" and str(lo).isdigit():     # one per online CPU
            hi = "%d (one per CPU)" % max(int(lo), os.cpu_count() or 1)
        return "%s..%s (dynamic, spare %s..%s)" % (
            lo, hi,
            conf.get(name + "_spare_min", "?"),
            conf.get(name + "_spare_max", "?"))
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
             "through each run (median); \"workers\": the loaded pool's "
             "workers, counted every %.2g s during each run (fewest–most "
             "over the rounds)" % Watch.PERIOD)
    L.append("")
    L.append("| benchmark | req/s | p50 | p99 | FastCGI conns | workers | "
             "× nginx alone | target | met |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---|---|")

    def row(label, key, ratio, target, ok):
        x = S[key]
        err = " (%d errors)" % x["errors"] if x["errors"] else ""
        up = "%d" % x["upstream"] if x["upstream"] is not None else ""
        L.append("| %s%s | %.0f | %s | %s | %s | %s | %s | %s | %s |" % (
            label, err, x["rps"], fmt_us(x["p50_us"]), fmt_us(x["p99_us"]),
            up, span_str(x["workers"]),
            "%.3f" % ratio if ratio is not None else "1", target, ok))

    p99_ok = lambda k: S[k]["p99_us"] < TARGETS["redirect_p99_ms"] * 1000
    row("nginx alone (`return 301`), 1k phase", "nginx_1k", None, "", "")
    row("redirect `GET /:id`, 1,000 links, uniform", "redirect_1k",
        rat["redirect_1k"], "≥ 0.20×, p99 < 10 ms",
        verdict(rat["redirect_1k"] >= TARGETS["redirect"] and
                p99_ok("redirect_1k") and not S["redirect_1k"]["errors"]))
    row("nginx alone (`return 301`)", "nginx", None, "", "")
    row("redirect `GET /:id`, %s links, uniform" % "{:,}".format(
        res["main_links"]), "redirect", rat["redirect"],
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
        "≥ 0.9 × ceiling (%d cores / hash = %.0f/s), i.e. ≥ %.0f/s" % (
            cores, login_ceiling, TARGETS["login"] * login_ceiling),
        "%s (%.2f of it)" % (
            verdict(login_ratio >= TARGETS["login"] and
                    not S["login"]["errors"]), login_ratio))
    L.append("")
    fs = res["fsync_s"]
    nw = S["create"]["workers"][1]
    L.append("Create commits one INSERT each (autocommit), and InnoDB makes "
             "a commit durable with an fsync of its log: a 4 KiB write + "
             "fdatasync in the datadir took %.2f ms (median, same run), so "
             "%d shortener workers (the most the pool had during the "
             "create runs), each waiting for its commit, cannot "
             "pass about %d / %.2f ms = %.0f creates/s unless commits share "
             "an fsync (group commit). Measured %.0f/s durable, %.0f/s with "
             "the flush left to once a second." % (
                 fs * 1e3, nw, nw, fs * 1e3, nw / fs, S["create"]["rps"],
                 S["create_relaxed"]["rps"]))
    L.append("")

    groups = ("nginx", "shortd", "mariadbd")
    scale_report(L, res, args, acc, hz)

    def per_req_us(a, g):
        v = a["ticks"].get(g)
        if v is None or v < 0 or not a["requests"]:
            return None
        return v / hz * 1e6 / a["requests"]

    def total_us(a):
        v = [per_req_us(a, g) for g in groups]
        return None if None in v else sum(v)

    def sched(a):
        """(on a CPU, waiting, idle) fractions of the pool's workers'
        lifetimes in the runs, and the CPU they got in cores; None where
        the readings make no sense."""
        if a["span"] <= 0 or a["wall"] <= 0:
            return None
        run, wait = a["run"] / 1e9 / a["span"], a["wait"] / 1e9 / a["span"]
        if run < 0 or wait < 0 or run + wait > 1.05:
            return None
        return run, wait, max(0.0, 1 - run - wait), a["run"] / 1e9 / a["wall"]

    def us(v):
        return "n/a" if v is None else "%.0f µs" % v

    login_cpu = total_us(acc["login"])
    L.append("One argon2id verification (m=%s KiB, t=%s, p=%s), timed by "
             "regress/bench/hashtime.c with shortd's password.c in the same "
             "run: median CPU time %.1f ms (per round: %s; wall clock %.1f "
             "ms). Login ceiling %d cores / %.1f ms = %.0f/s; measured "
             "%.0f/s; per round, login req/s over that round's ceiling: "
             "%s, median **%.2f** (target ≥ %.1f). A login cost %s of CPU "
             "in all (nginx, shortd, mariadbd), next to %.1f ms for the "
             "hash alone." % (
                 conf["argon2_memory"], conf["argon2_iterations"],
                 conf["argon2_parallelism"], hash_s * 1e3,
                 ", ".join("%.1f" % (h * 1e3) for h in res["hashes"]),
                 res["hash_wall_s"] * 1e3, cores, hash_s * 1e3,
                 login_ceiling, S["login"]["rps"],
                 ", ".join("%.2f" % (r["rps"] * h / cores) for r, h in
                           zip(runs["login"], res["hashes"])),
                 login_ratio, TARGETS["login"],
                 "n/a" if login_cpu is None else "%.1f ms" % (
                     login_cpu / 1e3), hash_s * 1e3))
    L.append("")
    q = sched(acc["login"])
    if q is not None:
        L.append("During the login runs the auth workers (%s of them) were "
                 "on a CPU %.0f%% of their time, runnable but waiting for a "
                 "CPU %.0f%% (nginx, mariadbd, wrk and other programs had "
                 "it), idle %.0f%% (no request for them): they got %.2f of "
                 "the %d cores on average, so against the CPU they got "
                 "(%.2f cores / %.1f ms = %.0f/s) login reached %.2f." % (
                     span_str(S["login"]["workers"]), 100 * q[0],
                     100 * q[1], 100 * q[2], q[3], cores, q[3],
                     hash_s * 1e3, q[3] / hash_s,
                     S["login"]["rps"] / (q[3] / hash_s) if q[3] > 0
                     else float("nan")))
    else:
        L.append("The auth workers' schedstat readings during the login "
                 "runs did not add up: n/a.")
    L.append("")
    L.append("CPU time per request (phase 1M, -c32), from /proc/PID/stat, "
             "tick-granular, read before and after each run. nginx: its "
             "master and worker; mariadbd: all its threads; shortd: the "
             "master, the status process and every worker of both pools "
             "(only the run's pool is loaded, so it is that pool's cost; "
             "the master's own ticks are in it but negligible): utime + "
             "stime of the master and of each child alive at the reading, "
             "plus the master's cutime + cstime, where the ticks of a "
             "worker that exited and was reaped in between land, so "
             "workers started or retired during the run are counted. "
             "Context switches per request: of every thread of those "
             "processes (/proc/PID/task/TID/status), read every %.2g s; a "
             "thread that ended during a run is counted up to its last "
             "reading, so where any did the figure is a lower bound (≥). "
             "The pool's workers from /proc/PID/schedstat, read at the same "
             "times: time on a CPU, runnable but waiting for one, and idle, "
             "as shares of the sum of the workers' lifetimes within the "
             "runs (a worker started mid-run counts from its start, one "
             "retired up to its last reading), and the CPU the pool got "
             "in cores (time on a CPU over the runs' wall-clock time):"
             % Watch.PERIOD)
    L.append("")
    L.append("| benchmark | nginx | shortd | mariadbd | total | context "
             "switches | pool | workers | workers on CPU / waiting for "
             "one / idle | pool's CPU |")
    L.append("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    for name in ("redirect", "create", "list", "login"):
        a = acc[name]
        q = sched(a)
        sw = sum(a["switches"].values()) / a["requests"] \
            if a["requests"] else None
        L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            name, us(per_req_us(a, "nginx")), us(per_req_us(a, "shortd")),
            us(per_req_us(a, "mariadbd")), us(total_us(a)),
            "n/a" if sw is None else "%s%.1f" % (
                "≥ " if a["ended"] else "", sw),
            a["pool"], span_str(S[name]["workers"]),
            "n/a" if q is None else "%.0f%% / %.0f%% / %.0f%%" % (
                100 * q[0], 100 * q[1], 100 * q[2]),
            "n/a" if q is None else "%.2f cores" % q[3]))
    L.append("")

    # Memory.
    growth, before, after, base = mem_growth(res)
    ib, ia = res["idle_before"], res["idle_after"]

    def count(idle):
        return "%d auth + %d shortener" % (idle[0]["auth"],
                                           idle[0]["shortener"])
    L.append("## Memory (master + status process + auth %s + shortener "
             "%s workers)" % (pool("auth"), pool("shortener")))
    L.append("")
    dyn = [p for p in ("auth", "shortener")
           if pool_bounds(conf, p)[0] != pool_bounds(conf, p)[1]]
    L.append("Idle: once no pool had changed size for %.1f s and each was "
             "at most its idle size (%s). Before the runs "
             "(after start-up, waited %.1f s%s): %s workers; after them "
             "(waited %.1f s%s): %s. RSS (VmRSS) and PSS (smaps_rollup) "
             "of every shortd process at those two points:" % (
                 SETTLE_QUIET_S,
                 "a static pool keeps its workers" if not dyn else
                 "a dynamic pool retires a worker idle for 1 s, one per "
                 "0.1 s tick of the master, only while more than "
                 "spare_max are free: daemon/master.c, master_scale; so "
                 "once grown it idles at max(workers_min, spare_max) = %s, "
                 "not at workers_min" % ", ".join(
                     "%d %s" % (pool_bounds(conf, p)[2], p) for p in dyn),
                 ib[1], "" if ib[2] else ", **not settled**", count(ib),
                 ia[1], "" if ia[2] else ", **not settled**", count(ia)))
    L.append("")
    L.append("| process | RSS idle before | RSS idle after | PSS idle "
             "before | PSS idle after |")
    L.append("|---|---:|---:|---:|---:|")
    mb = {pid: (name, m) for name, _, pid, m in res["mem_before"]}
    ma = {pid: (name, m) for name, _, pid, m in res["mem_after"]}
    order = [pid for _, _, pid, _ in res["mem_before"]]
    order += [pid for _, _, pid, _ in res["mem_after"] if pid not in mb]
    for pid in order:
        name = (mb.get(pid) or ma.get(pid))[0]
        x = mb.get(pid, (None, {}))[1]
        y = ma.get(pid, (None, {}))[1]
        note = ("" if pid in mb and pid in ma else " — retired during the "
                "runs" if pid in mb else " — started during the runs")
        L.append("| %s (pid %d)%s | %s | %s | %s | %s |" % (
            name, pid, note, kb(x.get("rss")), kb(y.get("rss")),
            kb(x.get("pss")), kb(y.get("pss"))))

    def tot(mem, k):
        v = [m[k] for _, _, _, m in mem]
        return None if None in v else sum(v)
    tb, ta = tot(res["mem_before"], "rss"), tot(res["mem_after"], "rss")
    L.append("| **all shortd processes** (%d before, %d after) | %s | %s | "
             "%s | %s |" % (
        len(res["mem_before"]), len(res["mem_after"]), kb(tb), kb(ta),
        kb(tot(res["mem_before"], "pss")), kb(tot(res["mem_after"], "pss"))))
    L.append("")
    lim = TARGETS["idle_mb"] * 1024
    L.append("Target: all shortd processes under %.0f MB RSS at idle with "
             "the default pool sizes (here: %s). Before the runs (%s "
             "workers): %s, %s; "
             "after them (%s workers): %s, %s. RSS counts the pages shared "
             "with the master (libraries, the image) once in every "
             "process; PSS shares them out: %s before, %s after." % (
                 TARGETS["idle_mb"], "the shipped ones" if not
                 args.static_pools and not args.set else "as configured "
                 "above", count(ib), kb(tb),
                 "n/a" if tb is None else verdict(tb < lim), count(ia),
                 kb(ta), "n/a" if ta is None else verdict(ta < lim),
                 kb(tot(res["mem_before"], "pss")),
                 kb(tot(res["mem_after"], "pss"))))
    L.append("")
    rmax = max((m["rss"] or 0) for _, _, _, m in res["mem_after"])
    pa = tot(res["mem_after"], "pss")
    lim = TARGETS["cache_mb"] * 1024
    L.append("With the redirect cache filled (`redirect_cache_mb` = %s: "
             "after the runs its pages are in the map, counted in the RSS "
             "of every worker that touched them and shared out in their "
             "PSS): largest RSS of one shortd process %s, PSS of all of "
             "them %s. Target: all shortd processes under %.0f MB, read "
             "as PSS (the map counted once) and as each process's RSS: "
             "%s." % (conf.get("redirect_cache_mb", "?"), kb(rmax), kb(pa),
                      TARGETS["cache_mb"], "n/a" if pa is None else
                      verdict(pa < lim and rmax < lim)))
    L.append("")
    both = sorted(((after[pid][1] - before[pid][1], pid, pool, "")
                   for pid, (pool, _) in before.items() if pid in after),
                  reverse=True)
    L.append("Growth: the RSS of every worker was also read after each "
             "run against shortd, every %.2g s for %.1f s from the end of "
             "the run (RSS less RssShmem, the scoreboard and the shared "
             "cache, which are the master's map, not the worker's growth), "
             "keeping each worker's smallest reading of the run: "
             "a worker hands the memory its requests freed back after "
             "0.5 s idle (a login's argon2 block is 19 MB) and is retired "
             "after 1 s idle, so each is read trimmed and before it goes. "
             "%d workers were seen in all. A worker's growth is the "
             "largest of those per-run figures and its idle RSS after the "
             "runs, less its own idle RSS before the runs if it was there, "
             "else less the smallest idle RSS before the runs of a worker "
             "of its pool (auth %s, shortener %s: workers are forked from "
             "the same master, so they start from the same image). Workers "
             "alive at both idle points, after − before: largest %s." % (
                 RSS_EVERY_S, RSS_FOR_S, len(growth), kb(base.get("auth")),
                 kb(base.get("shortener")),
                 ", ".join("%s (pid %d, %s)" % (
                     kb(after[g[1]][1] - before[g[1]][1], sign=True), g[1],
                     g[2]) for g in both[:1]) or
                 "none (no worker was there at both)"))
    if growth:
        g = growth[0]
        L.append("")
        L.append("Target: no worker grows more than %.0f MB: largest growth "
                 "%s (pid %d, %s pool, against its %s), %s." % (
                     TARGETS["growth_mb"], kb(g[0], sign=True), g[1], g[2],
                     g[3], verdict(g[0] <= TARGETS["growth_mb"] * 1024)))
    else:
        L.append("")
        L.append("Target: no worker grows more than %.0f MB: n/a (no "
                 "worker RSS read)." % TARGETS["growth_mb"])
    L.append("")

    if res.get("variants"):
        L.append("## Between nginx and the worker (%d rounds, each variant "
                 "after a restart of shortd and nginx with it)" %
                 args.variant_rounds)
        L.append("")
        L.append("Redirects over the 1,000 links of the list owner (all "
                 "cache hits once warm: what is left is nginx, the FastCGI "
                 "hop and the worker) and with Zipf ids over the whole "
                 "table, each as a ratio to nginx alone measured right "
                 "before it.")
        L.append("")
        L.append("| variant | 1k links req/s | × nginx alone | p99 | Zipf, "
                 "%s links req/s | × nginx alone | p99 |" % "{:,}".format(
                     res["nlinks"]))
        L.append("|---|---:|---:|---:|---:|---:|---:|")
        for label, r in res["variants"]:
            h, z = summarize(r["hit"]), summarize(r["zipf"])
            L.append("| %s | %.0f | %.3f | %s | %.0f | %.3f | %s |" % (
                label, h["rps"], median([b["rps"] / a["rps"] for a, b in
                                         zip(r["nginx"], r["hit"])]),
                fmt_us(h["p99_us"]), z["rps"],
                median([b["rps"] / a["rps"] for a, b in
                        zip(r["nginx"], r["zipf"])]), fmt_us(z["p99_us"])))
        L.append("")
    if res.get("analytics"):
        L.append("## Visit analytics on and off (%d rounds, each after a "
                 "restart of shortd and nginx with it)" %
                 args.analytics_rounds)
        L.append("")
        L.append("Redirects with browsers' User-Agents and referers "
                 "(redirect.lua), uniform ids over the 1,000 links of the "
                 "list owner and over %s links, each as a ratio to nginx "
                 "alone measured right before it; the target is analytics "
                 "on within 10 %% of off (docs/analytics.md)." %
                 "{:,}".format(res["analytics_links"]))
        L.append("")
        L.append("| | 1k links req/s | × nginx alone | p99 | %s links "
                 "req/s | × nginx alone | p99 |" % "{:,}".format(
                     res["analytics_links"]))
        L.append("|---|---:|---:|---:|---:|---:|---:|")
        ratios = {}
        for label, r in res["analytics"]:
            h, z = summarize(r["hit"]), summarize(r["zipf"])
            rh = median([b["rps"] / a["rps"] for a, b in
                         zip(r["nginx"], r["hit"])])
            rz = median([b["rps"] / a["rps"] for a, b in
                         zip(r["nginx"], r["zipf"])])
            ratios[label] = (rh, rz)
            L.append("| %s | %.0f | %.3f | %s | %.0f | %.3f | %s |" % (
                label, h["rps"], rh, fmt_us(h["p99_us"]), z["rps"], rz,
                fmt_us(z["p99_us"])))
        on, off = [ratios[v[0]] for v in ANALYTICS]
        L.append("")
        for k, name in enumerate(("1k", "{:,}".format(
                res["analytics_links"]))):
            q = on[k] / off[k] if off[k] else 0.0
            L.append("- %s links: on / off = %.3f %s" % (
                name, q, verdict(q >= 0.9)))
        g = res.get("visits_growth")
        if g and g["rows"] > 0:
            pages = (g["data"] + g["index"]) / g["rows"]
            L.append("- Database growth: the run's %s visit rows fill %.1f "
                     "MB of InnoDB pages (data and index, after ANALYZE "
                     "TABLE): **%.0f bytes a visit, %.0f MB per million "
                     "visits**; visits.ibd is %s bytes (it grows in "
                     "steps, so it says more for large runs)." % (
                         "{:,}".format(g["rows"]),
                         (g["data"] + g["index"]) / 1e6, pages, pages,
                         "{:,}".format(g["file"] or 0)))
        L.append("")

    if res.get("search"):
        search_report(L, res, args)
    if res.get("import"):
        L.append("## Import (POST /import of %s rows, url, title and two "
                 "tags each, with %s links in the table)" % (
                     "{:,}".format(IMPORT_ROWS), "{:,}".format(res["nlinks"])))
        L.append("")
        L.append("| round | created | body | seconds | rows/s |")
        L.append("|---:|---:|---:|---:|---:|")
        for k, (dt, n, size) in enumerate(res["import"]):
            L.append("| %d | %s | %.1f MB | %.2f | %.0f |" % (
                k + 1, "{:,}".format(n), size / 1e6, dt, n / dt))
        L.append("")
    if res.get("variants_error"):
        L.append("The variants between nginx and the worker failed: `%s`" %
                 res["variants_error"].replace("\n", " "))
        L.append("")

    # Sweep.
    L.append("## Connections sweep (redirect over %s links vs nginx alone, "
             "medians of %d rounds)" % (nl, args.sweep_rounds))
    L.append("")
    L.append("| connections | nginx req/s | nginx p99 | redirect req/s | "
             "redirect p99 | FastCGI conns | workers | ratio |")
    L.append("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c, n, r in res["sweep"]:
        L.append("| %d | %.0f | %s | %.0f | %s | %s | %s | %.3f |" % (
            c, n["rps"], fmt_us(n["p99_us"]), r["rps"], fmt_us(r["p99_us"]),
            r["sample"], span_str(r["workers"]), r["ratio"]))
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


def scale_report(L, res, args, acc, hz):
    """The redirects at each table size and traffic model, against
    nginx alone in the same rounds, with the targets of issue 17."""
    pts, models = res["points"], res["models"]
    L.append("## Redirects against the table's size and the traffic")
    L.append("")
    L.append("Rounds of [nginx alone, redirect under %s] at each size; "
             "ids uniform over the table, or Zipf (s = 1: the link of "
             "rank r gets visits in proportion to 1/r, and ranks are "
             "shuffled over the table so the hot links are not its "
             "first pages). Cache: the pool's shared redirect cache "
             "(`redirect_cache_mb` = %s), hits / lookups over the rounds. "
             "CPU per request as in the table below. From MariaDB's "
             "global status over the rounds: prepared statements "
             "executed per redirect and per miss (a miss is one point "
             "select by primary key; the rest are the visit flushes), "
             "index lookups (Handler_read_key) and rows written "
             "(Handler_update + _write + _delete: visit counts, flushed "
             "in batches, at most one row per link per flush) per "
             "redirect. Table and indexes: %s." % (
                 " and ".join(models), res["conf"].get("redirect_cache_mb",
                                                      "?"),
                 ", ".join("%s MB at %s" % ("%.0f" % res["scale"][p][
                     "table_mb"], links_label(p)) for p in pts)))
    L.append("")
    L.append("| links | traffic | req/s | nginx alone | × nginx alone | "
             "p50 | p99 | cache hits | nginx | shortd | mariadbd | "
             "statements / redirect (/ miss) | index lookups / redirect | "
             "rows written / redirect |")
    L.append("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
             "---:|---:|")
    fig = {}
    for p in pts:
        ph = res["scale"][p]
        n = summarize(ph["nginx"])
        for m in models:
            rs = ph[m]
            x = summarize(rs)
            ratio = median([b["rps"] / a["rps"] for a, b in
                            zip(ph["nginx"], rs)])
            hits = sum(r["cache"][0] for r in rs)
            look = hits + sum(r["cache"][1] for r in rs)
            reqs = sum(r["requests"] for r in rs) or 1
            db = {k: sum(r["db"][k] for r in rs) for k in DB_COUNTERS}
            misses = look - hits
            a = acc.get("redirect %d %s" % (p, m), {})

            def cpu(g):
                v = a.get("ticks", {}).get(g)
                if v is None or not a.get("requests"):
                    return None
                return v / hz * 1e6 / a["requests"]
            fig[(p, m)] = {"ratio": ratio, "p99": x["p99_us"],
                           "mariadbd": cpu("mariadbd")}
            L.append("| %s | %s | %.0f | %.0f | **%.3f** | %s | %s | %s | "
                     "%s | %s | %s | %.2f (%s) | %.2f | %.3f |" % (
                         "{:,}".format(ph["nlinks"]), m, x["rps"],
                         n["rps"], ratio, fmt_us(x["p50_us"]),
                         fmt_us(x["p99_us"]),
                         "%.2f" % (hits / look) if look else "-",
                         *["n/a" if cpu(g) is None else "%.0f µs" % cpu(g)
                           for g in ("nginx", "shortd", "mariadbd")],
                         db["Com_stmt_execute"] / reqs,
                         "%.2f" % (db["Com_stmt_execute"] / misses)
                         if misses else "-",
                         db["Handler_read_key"] / reqs,
                         (db["Handler_update"] + db["Handler_write"] +
                          db["Handler_delete"]) / reqs))
    L.append("")
    res["scale_fig"] = fig
    targets = []

    def at(n, m):
        return fig.get((n, m))
    for n in (1000000, 10000000):
        z = at(n, "zipf")
        if z:
            targets.append("Zipf at %s: %.3f× (target ≥ %.2f×) %s" % (
                links_label(n), z["ratio"], TARGETS["zipf"],
                verdict(z["ratio"] >= TARGETS["zipf"])))
    u1, u10 = at(1000000, "uniform"), at(10000000, "uniform")
    if u1 and u10:
        targets.append("uniform 10M / 1M: %.3f / %.3f = %.2f (target ≥ "
                       "%.1f) %s; uniform 10M %.3f× (target ≥ %.2f×) %s" % (
                           u10["ratio"], u1["ratio"],
                           u10["ratio"] / u1["ratio"],
                           TARGETS["uniform_flat"],
                           verdict(u10["ratio"] >= TARGETS["uniform_flat"] *
                                   u1["ratio"]), u10["ratio"],
                           TARGETS["uniform"],
                           verdict(u10["ratio"] >= TARGETS["uniform"])))
    worst = max(fig.values(), key=lambda f: f["p99"] or 0)
    targets.append("p99 < %.0f ms everywhere: largest %s %s" % (
        TARGETS["redirect_p99_ms"], fmt_us(worst["p99"]),
        verdict(all((f["p99"] or 0) < TARGETS["redirect_p99_ms"] * 1000
                    for f in fig.values()))))
    big = pts[-1]
    for m in models:
        f = at(big, m)
        if f and f["mariadbd"] is not None:
            targets.append("mariadbd CPU per redirect at %s, %s: %.0f µs" % (
                links_label(big), m, f["mariadbd"]))
    L.append("Targets (reported, not asserted): " + "; ".join(targets) +
             ".")
    L.append("")
    L.append("Loading: %s (LOAD DATA LOCAL INFILE in chunks of %s rows in "
             "primary key order; InnoDB buffer pool %d MB, "
             "innodb_log_file_size %d MB)." % (
                 ", ".join("to %s in %.0f s" % (links_label(p), t)
                           for p, t in res["load"]) or "none",
                 "{:,}".format(BULK_CHUNK), res["buffer_pool_mb"],
                 res["log_file_mb"]))
    L.append("")


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
    scale = data + ".scale"
    fig = res.get("scale_fig", {})
    with open(scale, "w") as f:
        f.write("# links uniform_ratio zipf_ratio (- where not run)\n")
        for p in res["points"]:
            f.write("%d %s %s\n" % (p, *[
                "%.4f" % fig[(p, m)]["ratio"] if (p, m) in fig else "-"
                for m in ("uniform", "zipf")]))
    gp = """
set terminal pngcairo size 1500,420 font ",10"
set output '%(png)s'
set multiplot layout 1,3 title "shortd redirects vs nginx alone (same rounds), wrk -t2 -c32"
set datafile missing "-"
set logscale x 10
set xrange [500:20000000]
set xlabel "links in the table"
set ylabel "× nginx alone"
set yrange [0:1]
set key top right
set grid
set title "ratio against links"
plot '%(scale)s' using 1:2 with linespoints lw 2 pt 7 title "uniform ids", \\
     '' using 1:3 with linespoints lw 2 pt 5 title "Zipf ids (s = 1)"
set title "connections sweep, %(nl)s links"
unset xrange
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
set title "p99, %(nl)s links"
set logscale y
set yrange [*:*]
plot '%(data)s' using 1:3 with linespoints lw 2 title "nginx alone", \\
     '' using 1:5 with linespoints lw 2 title "shortd redirect"
unset multiplot
""" % {"png": png, "data": data, "scale": scale,
       "nl": "{:,}".format(res["nlinks"])}
    p = subprocess.run(["gnuplot"], input=gp, text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        say("gnuplot failed:\n" + p.stdout)
    for path in (data, scale):
        try:
            os.unlink(path)
        except OSError:
            pass


if __name__ == "__main__":
    sys.exit(main())
