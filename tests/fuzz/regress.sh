#!/bin/sh
# tests/fuzz/regress.sh — replays every seed (tests/fuzz/corpus/*/*) and every saved finding
# (tests/fuzz/regressions/*/*) through each fuzz target, built without libFuzzer
# (standalone_main.c) and with ASan + UBSan (tests/fuzz/build.sh standalone → build/fuzz/
# standalone/). Every input goes through every target: a crash or a broken CHECK is a sanitizer
# report and a failure. One check per target; the last line is "N passed, N failed".
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
passed=0 failed=0
if ! command -v "${FUZZ_CC:-clang}" >/dev/null 2>&1; then
	echo "FAIL clang not found (apt-get install clang)"
	echo "0 passed, 1 failed"
	exit 1
fi
mkdir -p build/fuzz
tests/fuzz/build.sh standalone >build/fuzz/standalone-build.log 2>&1 || true
inputs=
for d in tests/fuzz/corpus/* tests/fuzz/regressions/*; do
	[ -d "$d" ] && inputs="$inputs $d"
done
# shellcheck disable=SC2086
n=$(find $inputs -type f 2>/dev/null | wc -l)
for src in tests/fuzz/fuzz_*.c; do
	t=$(basename "$src" .c)
	bin=build/fuzz/standalone/$t
	if [ ! -x "$bin" ]; then
		failed=$((failed + 1))
		echo "FAIL $t: did not build (see build/fuzz/standalone-build.log)"
		continue
	fi
	# shellcheck disable=SC2086
	out=$(ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		"$bin" $inputs 2>&1)
	rc=$?
	if [ "$rc" = 0 ]; then
		passed=$((passed + 1))
		echo "ok   $t: $(printf '%s\n' "$out" | tail -n 1) replayed clean (ASan, UBSan)"
	else
		failed=$((failed + 1))
		echo "FAIL $t: exit $rc"
		printf '%s\n' "$out" | grep -E 'ERROR|SUMMARY|check failed|runtime error|#[0-9] ' | head -n 15 | sed 's/^/       /'
	fi
done
echo "($n input files)"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
