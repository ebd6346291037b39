"""Running out of memory is a MemoryError, never a crash.

A child process caps its address space a little above what it uses, then records until the tape
cannot grow: the recorder's failed allocation must surface as MemoryError, the process must stay
alive, and the tape recorded so far must still replay."""
import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent("""
    import resource
    import tapead as ad

    with open("/proc/self/statm") as f:
        used = int(f.read().split()[0]) * resource.getpagesize()
    cap = used + 400 * 2**20
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    n = 0
    with ad.Tape() as t:
        x = t.variables(2.0)
        y = x
        try:
            while True:
                y = y * 1.0 + 0.0
                n += 2
        except MemoryError as e:
            print("MemoryError after", n, "operations:", e)
        t.outputs(y)
    try:                        # sweeping needs scratch memory too: refused, not a crash
        t.gradient(3.0)
        print("swept under the cap")
    except MemoryError:
        print("sweep refused")
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    print("replayed", len(t) in (n, n + 1), t.gradient(3.0), t(5.0))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS is Linux's")
# ASan reserves terabytes of address space for its shadow memory: a cap measured from the address
# space in use would not bind before the machine's memory ran out
@pytest.mark.no_asan
def test_failed_allocation_is_memory_error_not_a_crash():
    r = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "MemoryError after" in r.stdout, r.stdout
    assert int(r.stdout.split("MemoryError after ")[1].split()[0]) > 10 ** 6
    assert "sweep refused" in r.stdout or "swept under the cap" in r.stdout
    assert "replayed True 1.0 5.0" in r.stdout, r.stdout
