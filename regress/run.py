#!/usr/bin/python3
"""The one test driver behind `make check`.

    run.py --shortd PATH [--only unit,fuzz,e2e] [--filter SUBSTR] [--keep]

  unit  every build/asan/unit/test_* program; each prints "ok FILE:NAME"
        or "FAIL FILE:NAME" per case, and a program that exits non-zero
        (or dies) without saying which case failed is a FAIL of its own
  fuzz  every build/asan/fuzz/fuzz_NAME replaying regress/fuzz/corpus/NAME
        (one case per target, ok iff it exits 0)
  e2e   one private stack (regress/stack.py) for the whole run, then every
        test_* function of regress/e2e/test_*.py, by file and then in
        definition order, called as fn(stack) with a time limit; then
        "shutdown" (shortd stops cleanly on TERM) and "sanitizers" (no
        ASan/UBSan/LSan report from the daemon) cases

--filter keeps the cases whose name contains SUBSTR.  Prints "ok NAME" or
"FAIL NAME" per case, and finally "N passed, N failed"; exits 1 if any
case failed.  The stack's logs are copied to regress/out/.
"""

import argparse
import glob
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
import traceback

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "regress"))

import stack as stackmod  # noqa: E402

OUT = os.path.join(TOP, "regress", "out")
CASE_LIMIT = 120        # seconds per e2e case
PROGRAM_LIMIT = 300     # seconds per unit or fuzz program


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = []

    def ok(self, name):
        self.passed += 1
        print("ok " + name, flush=True)

    def fail(self, name, detail=""):
        if detail:
            sys.stdout.write(indent(detail))
        self.failed.append(name)
        print("FAIL " + name, flush=True)


def indent(text):
    text = text.rstrip("\n")
    if not text:
        return ""
    return "".join("    " + l + "\n" for l in text.split("\n"))


def sanitizer_env(logdir=None):
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0"
    env["UBSAN_OPTIONS"] = "print_stacktrace=1"
    return env


def run_program(cmd):
    """-> (returncode, stdout, stderr), returncode None on time-out."""
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=sanitizer_env(), cwd=TOP,
                           timeout=PROGRAM_LIMIT)
    except subprocess.TimeoutExpired as e:
        return None, e.stdout or b"", e.stderr or b""
    return p.returncode, p.stdout, p.stderr


def describe_exit(rc):
    if rc is None:
        return "timed out after %ds" % PROGRAM_LIMIT
    if rc < 0:
        try:
            return "killed by %s" % signal.Signals(-rc).name
        except ValueError:
            return "killed by signal %d" % -rc
    return "exit status %d" % rc


# ---------------------------------------------------------------- unit

def run_unit(t, filt):
    progs = sorted(p for p in glob.glob(os.path.join(TOP, "build", "asan",
                                                     "unit", "test_*"))
                   if os.access(p, os.X_OK) and not p.endswith(".c"))
    for prog in progs:
        base = os.path.basename(prog)
        if filt and filt not in base:
            continue
        rc, out, err = run_program([prog])
        out = out.decode(errors="replace")
        err = err.decode(errors="replace")
        lines = [l for l in out.splitlines()
                 if l.startswith("ok ") or l.startswith("FAIL ")]
        nfail = 0
        for l in lines:
            if l.startswith("ok "):
                t.ok(l[3:])
            else:
                nfail += 1
                t.fail(l[5:])
        if rc != 0 or not lines:
            if rc != 0 and nfail and rc > 0:
                # Failures already counted; just show why.
                sys.stdout.write(indent(err[-4000:]))
                continue
            why = describe_exit(rc) if rc != 0 else "printed no cases"
            t.fail("%s: %s" % (base, why), err[-8000:])
        elif nfail:
            sys.stdout.write(indent(err[-4000:]))


# ---------------------------------------------------------------- fuzz

def run_fuzz(t, filt):
    progs = sorted(p for p in glob.glob(os.path.join(TOP, "build", "asan",
                                                     "fuzz", "fuzz_*"))
                   if os.access(p, os.X_OK) and not p.endswith(".c"))
    for prog in progs:
        name = os.path.basename(prog)[len("fuzz_"):]
        case = "fuzz:%s corpus" % name
        if filt and filt not in case:
            continue
        corpus = os.path.join(TOP, "regress", "fuzz", "corpus", name)
        if not os.path.isdir(corpus):
            t.fail(case, "no corpus directory %s" % corpus)
            continue
        rc, out, err = run_program([prog, corpus])
        if rc == 0:
            t.ok(case)
        else:
            t.fail(case, describe_exit(rc) + "\n" +
                   (out + err).decode(errors="replace")[-8000:])


# ---------------------------------------------------------------- e2e

class CaseTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise CaseTimeout("case exceeded its %d s limit" % CASE_LIMIT)


def collect_e2e(filt):
    cases = []
    for path in sorted(glob.glob(os.path.join(TOP, "regress", "e2e",
                                              "test_*.py"))):
        modname = "e2e_" + os.path.basename(path)[:-3]
        spec = importlib.util.spec_from_file_location(modname, path)
        mod = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(mod)
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


def restore(s):
    """Put the stack back as the cases expect it after one that left it
    otherwise (database stopped, shortd stopped or reconfigured)."""
    notes = []
    if not s.db_running():
        notes.append("MariaDB was down")
        s.start_db()
    if not s.shortd_running():
        rc = s.shortd_exit if s.shortd_proc is None else \
            s.shortd_proc.poll()
        notes.append("shortd was not running (last exit %s)" % rc)
        s.stop_shortd()
        s.start_shortd()
    elif s.current_overrides or s.current_env:
        notes.append("shortd ran with %r %r" % (s.current_overrides,
                                               s.current_env))
        s.restart_shortd()
    if s.nginx_proc is None or s.nginx_proc.poll() is not None:
        notes.append("nginx was down")
        s.stop_nginx()
        s.start_nginx()
    return notes


def run_e2e(t, shortd, filt, keep):
    cases = collect_e2e(filt)
    if not cases:
        return None
    s = stackmod.Stack(shortd_path=shortd)
    old = signal.signal(signal.SIGALRM, _alarm)
    try:
        try:
            t0 = time.time()
            s.start()
            print("# stack up in %.1fs at %s (files in %s)" % (
                time.time() - t0, s.url, s.root), flush=True)
        except Exception:
            t.fail("e2e: stack start", traceback.format_exc())
            return s
        for name, fn, err in cases:
            if fn is None:
                t.fail(name, err)
                continue
            t0 = time.time()
            try:
                signal.alarm(CASE_LIMIT)
                try:
                    fn(s)
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
                notes = restore(s)
            except Exception:
                t.fail(name + ": restoring the stack afterwards",
                       traceback.format_exc())
                return s
            if notes:
                print("#   after %s: %s" % (name, "; ".join(notes)),
                      flush=True)
        finish_e2e(t, s)
        return s
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        s.stop()
        save_logs(s)
        if keep:
            print("# stack files kept in " + s.root)
        else:
            s.cleanup()


def finish_e2e(t, s):
    rc = s.stop_shortd()
    problems = list(s.problems)
    if rc != 0:
        problems.insert(0, "shortd's master exited with %s on TERM "
                        "(want 0)" % describe_exit(rc))
    if problems:
        t.fail("shutdown: shortd stops cleanly", "\n".join(problems))
    else:
        t.ok("shutdown: shortd stops cleanly")
    reports = s.sanitizer_reports()
    if reports:
        t.fail("sanitizers: no reports", reports[-20000:])
    else:
        t.ok("sanitizers: no reports")


def save_logs(s):
    try:
        os.makedirs(OUT, exist_ok=True)
        for name, path in s.log_files().items():
            shutil.copyfile(path, os.path.join(OUT, name))
    except OSError as e:
        print("# could not save logs: %s" % e)


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description="shortd's test driver")
    ap.add_argument("--shortd", default=os.path.join(TOP, "build",
                                                     "shortd-asan"))
    ap.add_argument("--only", default="unit,fuzz,e2e",
                    help="comma-separated: unit, fuzz, e2e")
    ap.add_argument("--filter", default="",
                    help="run only the cases whose name contains this")
    ap.add_argument("--keep", action="store_true",
                    help="keep the stack's directory after the run")
    args = ap.parse_args()
    parts = set(p.strip() for p in args.only.split(",") if p.strip())
    unknown = parts - {"unit", "fuzz", "e2e"}
    if unknown:
        ap.error("unknown part(s): " + ", ".join(sorted(unknown)))
    shortd = os.path.abspath(args.shortd)

    if os.path.isdir(OUT):
        shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT, exist_ok=True)

    t = Tally()
    try:
        if "unit" in parts:
            run_unit(t, args.filter)
        if "fuzz" in parts:
            run_fuzz(t, args.filter)
        if "e2e" in parts:
            if not os.access(shortd, os.X_OK):
                t.fail("e2e: %s is not built" % shortd)
            else:
                run_e2e(t, shortd, args.filter, args.keep)
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
