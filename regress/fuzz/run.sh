#!/bin/sh
# Run one libFuzzer target for a while:
#
#   regress/fuzz/run.sh NAME SECONDS
#
# build/fuzz/fuzz_NAME (made by `make fuzz`) runs on a fresh copy of
# regress/fuzz/corpus/NAME (new inputs go to the copy, never to the
# committed corpus) with regress/fuzz/NAME.dict when there is one.  A
# crash, leak, sanitizer report or time-out leaves its input in
# build/fuzz/findings/ and fails.  The last line sums the run up:
# executions, time, coverage (cov = edges, ft = features), corpus size.
#
# To keep an input that adds coverage, merge the copy into the seeds:
#   build/fuzz/fuzz_NAME -merge=1 regress/fuzz/corpus/NAME \
#       build/fuzz/work/NAME
# (then prune and name what it added: corpora stay small).
set -u
name=$1
secs=$2
top=$(cd "$(dirname "$0")/../.." && pwd)
bin=$top/build/fuzz/fuzz_$name
seeds=$top/regress/fuzz/corpus/$name
work=$top/build/fuzz/work/$name
finds=$top/build/fuzz/findings
log=$top/build/fuzz/fuzz_$name.log

[ -x "$bin" ] || { echo "fuzz $name: $bin is not built" >&2; exit 1; }
[ -d "$seeds" ] || { echo "fuzz $name: no corpus $seeds" >&2; exit 1; }
rm -rf "$work"
mkdir -p "$work" "$finds"
cp "$seeds"/* "$work"/
dict=
[ -f "$top/regress/fuzz/$name.dict" ] &&
    dict="-dict=$top/regress/fuzz/$name.dict"

echo "fuzz $name: $secs s on a copy of $(ls "$seeds" | wc -l) seeds" \
    "(log: $log)"
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
"$bin" $dict -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$finds/$name-" \
    "$work" >"$log" 2>&1
rc=$?

execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
last=$(grep -E '^#[0-9]+' "$log" | tail -1)
cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
corp=$(echo "$last" | sed -n 's/.*corp: \([0-9]*\).*/\1/p')
rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
if [ $rc -ne 0 ]; then
	grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" |
	    head -20 >&2
	echo "fuzz $name: FAILED (exit $rc) after ${execs:-?} execs;" \
	    "input in $finds, log $log" >&2
	exit 1
fi
echo "fuzz $name: ok, ${execs:-?} execs in $secs s," \
    "cov ${cov:-?} ft ${ft:-?}, corpus ${corp:-?}, peak RSS ${rss:-?} MB"
