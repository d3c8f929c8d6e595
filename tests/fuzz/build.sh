#!/bin/sh
# tests/fuzz/build.sh MODE — builds the fuzz targets (tests/fuzz/fuzz_*.c) with clang into
# build/fuzz/MODE/:
#   fuzz        libFuzzer binaries: -fsanitize=fuzzer,address,undefined   (scripts/fuzz.sh)
#   standalone  the same targets with tests/fuzz/standalone_main.c instead of libFuzzer,
#               -fsanitize=address,undefined                              (tests/fuzz/regress.sh)
# The code under test is common/ (with common/sender/, common/bchat/) and ingress/ (with the
# daemons' folders) except each daemon's main.c, compiled with the same
# sanitizers into an archive, so a target links only what it uses. A source that does not
# compile is reported and left out (it matters only if a target needs it). Prints one line per
# target; exits non-zero when a target could not be built. Run from anywhere.
set -u
mode=${1:-fuzz}
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
CC=${FUZZ_CC:-clang}
case $mode in
fuzz) san="-fsanitize=fuzzer-no-link,address,undefined" link="-fsanitize=fuzzer,address,undefined" main= ;;
standalone) san="-fsanitize=address,undefined" link="-fsanitize=address,undefined" main=tests/fuzz/standalone_main.c ;;
*) echo "usage: $0 fuzz|standalone" >&2; exit 2 ;;
esac
out=build/fuzz/$mode
flags="-g -O1 -std=c11 -D_GNU_SOURCE -fno-omit-frame-pointer -fno-sanitize-recover=all -Icommon $san"
libs="-lsodium -ljansson -lcrypto -lssl -lnghttp2 -llmdb -lseccomp -lexpat -lnats -lm -lpthread"
mkdir -p "$out/obj"
rm -f "$out"/obj/*.o "$out/libunder-test.a" "$out"/obj/*.failed

# Compile the code under test in parallel; a failure leaves a .failed marker with the errors.
jobs=$(nproc 2>/dev/null || echo 4)
for src in common/*.c common/*/*.c ingress/*.c ingress/*/*.c; do
	case $src in ingress/*/main.c) continue ;; esac
	echo "$src"
done | FUZZ_OUT=$out FUZZ_CC1=$CC FUZZ_FLAGS=$flags xargs -P "$jobs" -I{} sh -c '
	src=$1
	obj=$FUZZ_OUT/obj/$(echo "$src" | tr / _ | sed "s/\.c\$/.o/")
	# shellcheck disable=SC2086
	$FUZZ_CC1 $FUZZ_FLAGS -c -o "$obj" "$src" 2>"$obj.err" || mv "$obj.err" "$obj.failed"
	rm -f "$obj.err"' sh {}
for f in "$out"/obj/*.failed; do
	[ -e "$f" ] || continue
	echo "note: $(basename "$f" .o.failed) (common/ or ingress/) does not compile; left out:" >&2
	head -n 5 "$f" >&2
done
ar rcs "$out/libunder-test.a" "$out"/obj/*.o

rc=0
for t in tests/fuzz/fuzz_*.c; do
	name=$(basename "$t" .c)
	# shellcheck disable=SC2086
	if $CC $flags -Itests/fuzz -o "$out/$name" "$t" $main "$out/libunder-test.a" $link $libs 2>"$out/$name.err"; then
		echo "built $out/$name"
		rm -f "$out/$name.err"
	else
		echo "FAILED to build $name:"
		head -n 20 "$out/$name.err"
		rm -f "$out/$name"
		rc=1
	fi
done
exit $rc
