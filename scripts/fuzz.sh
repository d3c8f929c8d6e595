#!/bin/sh
# scripts/fuzz.sh [SECONDS] — builds every libFuzzer target in tests/fuzz/ (clang,
# -fsanitize=fuzzer,address,undefined, into build/fuzz/fuzz/) and runs each for SECONDS
# (default 60) with -max_total_time, starting from tests/fuzz/corpus/<target>/ (read-only: new
# inputs go to build/fuzz/corpus/<target>/) and the dictionary tests/fuzz/dict/<target>.dict.
# A crash, leak, timeout or out-of-memory input is copied into tests/fuzz/regressions/<target>/
# (replayed by tests/fuzz/regress.sh from then on). One check per target; the last line is
# "N passed, N failed"; the exit status is non-zero when a target failed to build or found
# something. FUZZ_JOBS=N runs N targets at once (default: all of them when there are enough CPUs).
set -u
secs=${1:-60}
case $secs in '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;; esac
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
out=build/fuzz
passed=0 failed=0

if ! command -v "${FUZZ_CC:-clang}" >/dev/null 2>&1; then
	echo "FAIL clang not found (apt-get install clang)"
	echo "0 passed, 1 failed"
	exit 1
fi
tests/fuzz/build.sh fuzz
targets=$(for t in tests/fuzz/fuzz_*.c; do basename "$t" .c; done)
ntargets=$(echo "$targets" | wc -w)
cpus=$(nproc 2>/dev/null || echo 1)
jobs=${FUZZ_JOBS:-$([ "$cpus" -ge $((ntargets * 2)) ] && echo "$ntargets" || echo 1)}

run_one() {
	t=$1
	bin=$out/fuzz/$t
	[ -x "$bin" ] || { echo "not built" > "$out/logs/$t.log"; echo 99 > "$out/logs/$t.rc"; return; }
	mkdir -p "$out/corpus/$t" "$out/artifacts/$t"
	rm -f "$out/artifacts/$t"/*
	dict=
	[ -f "tests/fuzz/dict/$t.dict" ] && dict="-dict=tests/fuzz/dict/$t.dict"
	# shellcheck disable=SC2086
	"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=16384 -print_final_stats=1 \
		-artifact_prefix="$out/artifacts/$t/" $dict "$out/corpus/$t" "tests/fuzz/corpus/$t" \
		> "$out/logs/$t.log" 2>&1
	echo $? > "$out/logs/$t.rc"
}

mkdir -p "$out/logs"
echo "fuzzing $ntargets targets for $secs s each, $jobs at a time"
running=0
for t in $targets; do
	run_one "$t" &
	running=$((running + 1))
	if [ "$running" -ge "$jobs" ]; then
		wait
		running=0
	fi
done
wait

for t in $targets; do
	rc=$(cat "$out/logs/$t.rc" 2>/dev/null || echo 99)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/logs/$t.log" | tail -n 1)
	cov=$(grep -E '^#[0-9]+' "$out/logs/$t.log" | tail -n 1 | sed -n 's/.*cov: \([0-9]*\).*ft: \([0-9]*\).*corp: \([0-9/]*[a-zA-Z]*\).*/cov \1, ft \2, corpus \3/p')
	found=$(ls "$out/artifacts/$t" 2>/dev/null | wc -l)
	if [ "$rc" = 0 ] && [ "$found" = 0 ]; then
		passed=$((passed + 1))
		echo "ok   $t: ${execs:-?} runs in ${secs} s, nothing found ($cov)"
	else
		failed=$((failed + 1))
		if [ "$found" != 0 ]; then
			mkdir -p "tests/fuzz/regressions/$t"
			cp "$out/artifacts/$t"/* "tests/fuzz/regressions/$t/"
			echo "FAIL $t: exit $rc, $found input(s) copied to tests/fuzz/regressions/$t/:"
			ls "$out/artifacts/$t" | sed 's/^/       /'
		else
			echo "FAIL $t: exit $rc"
		fi
		grep -E 'ERROR|SUMMARY|check failed|runtime error' "$out/logs/$t.log" | head -n 8 | sed 's/^/       /'
		echo "       full log: $out/logs/$t.log"
	fi
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
