#!/usr/bin/python3
"""The driver behind `make check-cluster`: shortd scaled out, for real.

    regress/cluster/run.py --shortd PATH [--filter SUBSTR] [--keep] [-v]

Starts a 3-node Galera cluster on loopback, two shortd instances (A on
node 1 first, B on node 2 first) and one nginx balancing over them
(regress/cluster/cluster.py), then runs, each as one case with a time
limit:

  1. the e2e contract suites regress/e2e/test_{auth,shortener,classic,
     interop}.py, unchanged, through the balancing nginx;
  2. regress/cluster/test_cluster.py: where each instance connects, writes through one host read through the
     other at once, certification conflicts retried;
  3. regress/cluster/test_faults.py: a Galera node killed and
     rejoined, a shortd instance killed, under a steady mixed load;
  4. "shutdown" (both instances stop cleanly on TERM) and "sanitizers"
     (no ASan/UBSan/LSan report from either).

Prints "ok NAME" or "FAIL NAME" per case, timings as "#" lines, and
finally "N passed, N failed"; exits 1 if any case failed.  Logs are
copied to regress/out/cluster/.
"""

import argparse
import importlib.util
import os
import shutil
import signal
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "regress"))
sys.path.insert(0, HERE)

import cluster as clustermod  # noqa: E402


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# The single-host driver: its Tally and output format.
driver = _load(os.path.join(TOP, "regress", "run.py"), "regress_run")

OUT = os.path.join(TOP, "regress", "out", "cluster")
E2E_SUITES = ["test_auth.py", "test_shortener.py", "test_classic.py",
              "test_interop.py"]
CLUSTER_SUITES = ["test_cluster.py", "test_faults.py"]
CASE_LIMIT = 240


class CaseTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise CaseTimeout("case exceeded its %d s limit" % CASE_LIMIT)


def collect(filt):
    paths = [os.path.join(TOP, "regress", "e2e", f) for f in E2E_SUITES]
    paths += [os.path.join(HERE, f) for f in CLUSTER_SUITES]
    cases = []
    for path in paths:
        tag = "cluster" if os.path.dirname(path) == HERE else "e2e"
        modname = "%s_%s" % (tag, os.path.basename(path)[:-3])
        try:
            mod = _load(path, modname)
        except Exception:
            cases.append((os.path.basename(path) + ": import", None,
                          traceback.format_exc()))
            continue
        for fname, fn in list(vars(mod).items()):
            if not fname.startswith("test_") or not callable(fn):
                continue
            if getattr(fn, "__module__", None) != modname:
                continue
            name = "%s:%s" % (os.path.basename(path), fname)
            if filt and filt not in name:
                continue
            cases.append((name, fn, None))
    return cases


def finish(t, c):
    problems = []
    for inst in c.instances:
        rc = inst.stop_shortd()
        if rc != 0:
            problems.append("instance %s's master exited with %s on TERM"
                            % (inst.name, driver.describe_exit(rc)))
        problems += ["instance %s: %s" % (inst.name, p)
                     for p in inst.problems]
    if problems:
        t.fail("shutdown: both instances stop cleanly", "\n".join(problems))
    else:
        t.ok("shutdown: both instances stop cleanly")
    reports = "".join(inst.sanitizer_reports() for inst in c.instances)
    if reports:
        t.fail("sanitizers: no reports", reports[-20000:])
    else:
        t.ok("sanitizers: no reports")


def save_logs(c):
    try:
        os.makedirs(OUT, exist_ok=True)
        for name, path in c.log_files().items():
            shutil.copyfile(path, os.path.join(OUT, name))
    except OSError as e:
        print("# could not save logs: %s" % e)


def run(t, shortd, filt, keep, verbose):
    cases = collect(filt)
    c = clustermod.Cluster(shortd_path=shortd, verbose=verbose)
    old = signal.signal(signal.SIGALRM, _alarm)
    t_all = time.time()
    try:
        try:
            c.start()
            print("# cluster up in %.1fs (Galera %.1fs, then shortd and "
                  "nginx %.1fs) at %s, files in %s" % (
                      time.time() - t_all, c.timings.get("galera", 0),
                      c.timings.get("shortd+nginx", 0), c.url, c.root),
                  flush=True)
        except Exception:
            t.fail("cluster: start", traceback.format_exc())
            return
        for name, fn, err in cases:
            if fn is None:
                t.fail(name, err)
                continue
            t0 = time.time()
            try:
                signal.alarm(CASE_LIMIT)
                try:
                    fn(c)
                finally:
                    signal.alarm(0)
            except Exception:
                t.fail(name, traceback.format_exc())
            else:
                t.ok(name)
            if time.time() - t0 >= 5:
                print("#   %s took %.1fs" % (name, time.time() - t0),
                      flush=True)
            try:
                notes = c.restore()
            except Exception:
                t.fail(name + ": restoring the cluster afterwards",
                       traceback.format_exc())
                return
            if notes:
                print("#   after %s: %s" % (name, "; ".join(notes)),
                      flush=True)
        finish(t, c)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        c.stop()
        save_logs(c)
        for n, how, secs in c.galera.sst_log:
            print("# node %d joined by %s in %.1fs" % (n, how, secs))
        print("# cluster run took %.1fs" % (time.time() - t_all),
              flush=True)
        if keep:
            print("# cluster files kept in " + c.root)
        else:
            c.cleanup()


def main():
    ap = argparse.ArgumentParser(description="shortd's cluster tests")
    ap.add_argument("--shortd", default=os.path.join(TOP, "build",
                                                     "shortd-asan"))
    ap.add_argument("--filter", default="",
                    help="run only the cases whose name contains this")
    ap.add_argument("--keep", action="store_true",
                    help="keep the cluster's directory after the run")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    shortd = os.path.abspath(args.shortd)
    if os.path.isdir(OUT):
        shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT, exist_ok=True)
    t = driver.Tally()
    try:
        if not os.access(shortd, os.X_OK):
            t.fail("cluster: %s is not built" % shortd)
        else:
            run(t, shortd, args.filter, args.keep, args.verbose)
    except KeyboardInterrupt:
        t.fail("interrupted")
    except SystemExit as e:
        t.fail("interrupted (%s)" % e.code)
    if t.failed:
        print("\nfailed:\n" + "".join("  %s\n" % n for n in t.failed),
              end="")
    print("%d passed, %d failed" % (t.passed, len(t.failed)), flush=True)
    return 1 if t.failed else 0


if __name__ == "__main__":
    sys.exit(main())
