#!/usr/bin/env bash
# Build the C core with AddressSanitizer and UndefinedBehaviorSanitizer in a scratch copy and run
# the test suite against it (needs gcc's libasan/libubsan). Usage: bash tests/run_sanitizers.sh
# The RSS test is skipped: ASan's quarantine keeps freed memory.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp -r "$root/csrc" "$root/tapead" "$root/tests" "$root/setup.py" "$root/pyproject.toml" "$work/"
rm -f "$work"/tapead/*.so
cd "$work"
CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -g" \
LDFLAGS="-fsanitize=address,undefined" python3 setup.py -q build_ext --inplace
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)" \
PYTHONPATH="$work" python3 -m pytest -q -p no:cacheprovider tests \
    --deselect tests/test_memory.py::test_record_free_cycles_do_not_leak \
    --deselect tests/test_limits.py::test_failed_allocation_is_memory_error_not_a_crash
