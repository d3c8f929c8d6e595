#!/bin/sh
# Runs every test program given as an argument (plus tests/integration/*.sh), echoes its
# output, adds up the "N passed, N failed" closing lines and prints the total.
# A program that exits non-zero or prints no closing line counts as one failure.
set -u
total_p=0 total_f=0
# The failing lines again at the end, next to the total: a long log is often read from its end.
failures=$(mktemp)
trap 'rm -f "$failures"' EXIT
for t in "$@" tests/integration/*.sh; do
	[ -x "$t" ] || continue
	echo "== $t"
	out=$("$t" 2>&1); rc=$?
	printf '%s\n' "$out"
	printf '%s\n' "$out" | grep -E '^FAIL' | sed "s|^|$t: |" >> "$failures"
	line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
	if [ -z "$line" ]; then
		echo "!! $t printed no closing line (exit $rc)" | tee -a "$failures"
		total_f=$((total_f + 1))
		continue
	fi
	p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
	total_p=$((total_p + p)); total_f=$((total_f + f))
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		echo "!! $t exited $rc" | tee -a "$failures"
		total_f=$((total_f + 1))
	fi
done
if [ -s "$failures" ]; then
	echo "== failing checks ($(wc -l < "$failures"), the first 40)"
	head -n 40 "$failures"
fi
echo "total: $total_p passed, $total_f failed"
[ "$total_f" = 0 ]
