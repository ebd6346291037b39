#!/usr/bin/env bash
# Build the C core (tapead._tapead and tapead._fast) with AddressSanitizer and
# UndefinedBehaviorSanitizer in a scratch copy of the tree, then run against that build:
#   1. the test suite, except the slow test and the tests marked no_asan (see pyproject.toml);
#   2. tests/stress_threads.py: threads recording their own tapes and replaying shared ones, then
#      threads attacking a tape another thread is recording (two processes, so that a crash in
#      the hostile phase does not hide the result of the others);
#   3. opt-in (FUZZ_CASES): tests/fuzz_tapes.py, hostile tape files through ad.loads and every
#      sweep (the suite already runs 12000 of them in tests/test_saving.py).
# Any ASan or UBSan report aborts the process that made it, so it fails the step it happened in.
#
# Usage: bash tests/run_sanitizers.sh [extra pytest arguments]
# Environment:
#   PYTHON          interpreter with the test dependencies (default: python3 on PATH, which in an
#                   activated venv is the venv's); it needs setuptools and cffi to build
#   CC              C compiler (default gcc); its libasan/libubsan are preloaded into Python
#   STRESS_SECONDS  seconds per stress phase (default 5; 4 phases)
#   FUZZ_CASES      run step 3 with this many cases (e.g. 1000000: about an hour under the
#                   sanitizers); FUZZ_SECONDS caps its time. Default 0: no step 3
#   SANITIZE_KEEP=1 keep the scratch copy (its path is printed)
# Exit status: 0 all passed; 1 the suite or the stress failed (or crashed); 2 the sanitizer
# build could not be made (missing runtime, compiler or build dependency).
set -euo pipefail

die() { echo "run_sanitizers.sh: $*" >&2; exit 2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.0f s", b - a }'; }

root="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-python3}"
command -v "$PY" >/dev/null || die "no interpreter '$PY' (set PYTHON)"
case "$PY" in                   # absolute (the build runs elsewhere), symlinks kept (a venv's is one)
    /*) ;;
    */*) PY="$PWD/$PY" ;;
    *) PY="$(command -v "$PY")" ;;
esac
CC="${CC:-gcc}"
command -v "$CC" >/dev/null || die "no C compiler '$CC' (set CC)"
echo "run_sanitizers.sh: $("$PY" -c 'import sys; print(sys.executable, sys.version.split()[0])'), $CC"
"$PY" -c "import setuptools, cffi, numpy, pytest" 2>/dev/null ||
    die "$PY lacks setuptools, cffi, numpy or pytest: pip install -e '.[test]' (and setuptools)"

# The sanitizer runtimes are preloaded into the (uninstrumented) Python: they must be the ones
# of the compiler that builds the extension.
runtime() {
    local f
    f="$("$CC" -print-file-name="$1")"
    [[ "$f" == /* && -e "$f" ]] || die "$CC has no $1 (Debian/Ubuntu: apt-get install $2)"
    echo "$f"
}
libasan="$(runtime libasan.so "libasan8 libgcc-12-dev")"
libubsan="$(runtime libubsan.so "libubsan1 libgcc-12-dev")"

work="$(mktemp -d)"
if [[ "${SANITIZE_KEEP:-0}" == 1 ]]; then
    echo "run_sanitizers.sh: scratch copy kept in $work"
else
    trap 'rm -rf "$work"' EXIT
fi

SAN="-fsanitize=address,undefined -fno-sanitize-recover=all"
printf 'int main(void) { return 0; }\n' > "$work/probe.c"
"$CC" $SAN -o "$work/probe" "$work/probe.c" && "$work/probe" ||
    die "$CC cannot build and run a program with $SAN"

cp -r "$root/csrc" "$root/tapead" "$root/tests" "$root/setup.py" "$root/pyproject.toml" "$work/"
mkdir "$work/bench" && cp "$root"/bench/*.py "$work/bench/"   # tests import bench/problems.py
rm -f "$work"/tapead/*.so "$work"/tapead/_tapead.c
cd "$work"

t0="$(now)"
CC="$CC" CFLAGS="$SAN -fno-omit-frame-pointer -g -DTP_POISON_CONSTS" LDFLAGS="$SAN" \
    "$PY" setup.py -q build_ext --inplace > build.log 2>&1 ||
    { tail -n 40 build.log >&2; die "the sanitizer build failed (log above)"; }
build_time="$(since "$t0")"

export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=1:print_summary=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:abort_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export LD_PRELOAD="$libasan:$libubsan"
export TAPEAD_NATIVE_CFLAGS="$SAN"        # Tape.compile()'s kernels (tapead/native.py) too
export PYTHONPATH="$work"

# The editable install of the tree must not shadow the scratch build: check what is imported.
"$PY" - "$work" <<'EOF' || die "the sanitizer build is not what Python imports (above)"
import os, sys
import tapead._fast, tapead._tapead
for m in (tapead._tapead, tapead._fast):
    f = os.path.realpath(m.__file__)
    if not f.startswith(os.path.realpath(sys.argv[1]) + os.sep):
        sys.exit(f"{m.__name__} comes from {f}, not from the scratch build")
    if b"__asan_report" not in open(f, "rb").read():
        sys.exit(f"{f} is not instrumented by ASan")
EOF
echo "run_sanitizers.sh: built in $build_time ($work)"

status=0
report() {                      # report NAME RC TIME: one line, and the exit status it makes
    local how="passed"
    if [[ "$2" -eq 5 && "$1" == pytest* ]]; then how="FAILED: pytest collected no tests (5)"
    elif [[ "$2" -gt 128 ]]; then how="FAILED: killed by signal $(($2 - 128)) (an ASan/UBSan report aborts: SIGABRT is 6)"
    elif [[ "$2" -ne 0 ]]; then how="FAILED (exit status $2)"; fi
    summary+="  $1: $how, $3"$'\n'
    [[ "$2" -eq 0 ]] || status=1
}
summary=""

t0="$(now)"
# no_asan: tests that measure the resident set or cap the address space (ASan's quarantine holds
# freed memory; its shadow memory needs terabytes of address space); slow: 10^8 operations.
rc=0
"$PY" -m pytest -q -p no:cacheprovider -m "not slow and not no_asan" tests "$@" || rc=$?
report "pytest (ASan+UBSan)" "$rc" "$(since "$t0")"

secs="${STRESS_SECONDS:-5}"
t0="$(now)"
rc=0
"$PY" tests/stress_threads.py own shared mixed --seconds "$secs" || rc=$?
report "stress_threads.py own shared mixed" "$rc" "$(since "$t0")"

t0="$(now)"
rc=0
"$PY" tests/stress_threads.py hostile --seconds "$secs" || rc=$?
report "stress_threads.py hostile" "$rc" "$(since "$t0")"

if [[ "${FUZZ_CASES:-0}" -gt 0 ]]; then
    t0="$(now)"
    rc=0
    "$PY" tests/fuzz_tapes.py --cases "$FUZZ_CASES" ${FUZZ_SECONDS:+--seconds "$FUZZ_SECONDS"} || rc=$?
    report "fuzz_tapes.py --cases $FUZZ_CASES" "$rc" "$(since "$t0")"
fi

echo
echo "run_sanitizers.sh: build $build_time"
printf '%s' "$summary"
exit "$status"
