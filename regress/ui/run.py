#!/usr/bin/python3
"""`make check-ui`: the web page (www/) in headless Chromium, for real.

    regress/ui/run.py [--shortd ./shortd] [--keep]

Starts the make-run-style stack (private MariaDB, the release shortd,
nginx from etc/nginx-local.conf.in serving www/ at /ui/) on free ports,
runs regress/ui/test_ui.mjs (playwright-core driving Debian's
/usr/bin/chromium; no browser download) against it, then checks that
shortd stops cleanly.  Prints "ok NAME" / "FAIL NAME" per case and
finally "N passed, N failed"; exits 1 if any case failed.  Screenshots
and the stack's logs go to regress/out/ui/.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "regress"))

import stack as stackmod  # noqa: E402

OUT = os.path.join(TOP, "regress", "out", "ui")
TEST = os.path.join(HERE, "test_ui.mjs")
PLAYWRIGHT = os.path.join(HERE, "node_modules", "playwright-core")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
LIMIT = 600             # seconds for the whole browser run
SUMMARY_RE = re.compile(r"^(\d+) passed, (\d+) failed$")


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = []

    def ok(self, name):
        self.passed += 1
        print("ok " + name, flush=True)

    def fail(self, name, detail=""):
        detail = detail.rstrip("\n")
        if detail:
            print("".join("    " + l + "\n" for l in detail.split("\n")),
                  end="")
        self.failed.append(name)
        print("FAIL " + name, flush=True)


def run_browser(t, url):
    """Run test_ui.mjs, echoing its cases into the tally."""
    env = dict(os.environ, CHROMIUM=CHROMIUM)
    proc = subprocess.Popen(
        ["node", TEST, "--url", url, "--out", OUT], cwd=TOP, env=env,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=stackmod._child_setup)
    timer = threading.Timer(LIMIT, lambda: os.killpg(proc.pid,
                                                     signal.SIGKILL))
    timer.start()
    summary, detail, cases = None, [], 0
    try:
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            if line.startswith("ok "):
                t.ok(line[3:])
                cases += 1
            elif line.startswith("FAIL "):
                t.fail(line[5:], "\n".join(detail))
                cases += 1
                detail = []
            elif SUMMARY_RE.match(line):
                summary = line
            else:
                # The reasons of a failing case come indented before
                # its FAIL line; anything else is shown as it comes.
                if line.startswith("    "):
                    detail.append(line[4:])
                else:
                    print("# " + line, flush=True)
        rc = proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if detail:
        print("".join("    " + l + "\n" for l in detail), end="")
    if rc < 0:
        t.fail("ui: the browser run", "killed by signal %d (limit %d s)"
               % (-rc, LIMIT))
    elif summary is None or cases == 0:
        t.fail("ui: the browser run", "test_ui.mjs exited %d without "
               "its summary line" % rc)
    elif rc != 0 and not t.failed:
        t.fail("ui: the browser run", "exited %d with no failed case" % rc)


def save_logs(s):
    dest = os.path.join(OUT, "logs")
    try:
        os.makedirs(dest, exist_ok=True)
        for name, path in s.log_files().items():
            shutil.copyfile(path, os.path.join(dest, name))
    except OSError as e:
        print("# could not save logs: %s" % e)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shortd", default=os.path.join(TOP, "shortd"))
    ap.add_argument("--keep", action="store_true",
                    help="keep the stack's directory after the run")
    args = ap.parse_args()
    shortd = os.path.abspath(args.shortd)

    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT, exist_ok=True)
    t = Tally()
    missing = []
    if not os.access(shortd, os.X_OK):
        missing.append("%s is not built (make)" % shortd)
    if not os.access(CHROMIUM, os.X_OK):
        missing.append("%s is missing (make deps-ui)" % CHROMIUM)
    if not os.path.isdir(PLAYWRIGHT):
        missing.append("%s is missing (make deps-ui)" % PLAYWRIGHT)
    if shutil.which("node") is None:
        missing.append("node is not on PATH")
    if missing:
        t.fail("ui: prerequisites", "\n".join(missing))
        print("%d passed, %d failed" % (t.passed, len(t.failed)))
        return 1

    s = stackmod.Stack(shortd_path=shortd)
    try:
        t0 = time.time()
        try:
            s.start()
        except Exception:
            t.fail("ui: stack start", traceback.format_exc())
        else:
            print("# stack up in %.1fs at %s" % (time.time() - t0, s.url),
                  flush=True)
            run_browser(t, s.url)
            rc = s.stop_shortd()
            problems = list(s.problems)
            if rc != 0:
                problems.insert(0, "shortd exited with %s on TERM" % rc)
            if problems:
                t.fail("ui: shortd stops cleanly", "\n".join(problems))
            else:
                t.ok("ui: shortd stops cleanly")
    except (KeyboardInterrupt, SystemExit):
        t.fail("interrupted")
    finally:
        s.stop()
        save_logs(s)
        if args.keep:
            print("# stack files kept in " + s.root)
        else:
            s.cleanup()
    shots = sorted(f for f in os.listdir(OUT) if f.endswith(".png"))
    print("# %d screenshots in %s" % (len(shots), os.path.relpath(OUT, TOP)))
    if t.failed:
        print("\nfailed:\n" + "".join("  %s\n" % n for n in t.failed),
              end="")
    print("%d passed, %d failed" % (t.passed, len(t.failed)), flush=True)
    return 1 if t.failed else 0


if __name__ == "__main__":
    sys.exit(main())
