"""tests/stress_threads.py, briefly, in a subprocess: a crash (a segfault, a double free, an
ASan abort under tests/run_sanitizers.sh) fails the test instead of killing pytest. Each test
takes about a second here (interpreter start, references, then the phases' fraction of a
second); run_sanitizers.sh runs the script again for several seconds per phase.

The hostile case: threads that did not enter a tape's `with` block try to record on it
(`with t:`, t.__exit__(), t.variables, arithmetic, ad.sum, comparisons mixing two tapes' Vars,
...) while its recorder is inside it. Each attempt must raise ad.TapeError and the recorder's tape
must come out exactly as recorded."""
import os
import signal
import subprocess
import sys

import pytest

import tapead

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stress_threads.py")

pytestmark = pytest.mark.stress


def run(*args):
    # the script imports the tapead this process imported (a source tree on sys.path too)
    root = os.path.dirname(os.path.dirname(os.path.abspath(tapead.__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [root] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))
    r = subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                       timeout=300, env=env)
    if r.returncode != 0:
        if r.returncode < 0:
            how = f"crashed: {signal.Signals(-r.returncode).name}"
        else:
            how = f"exit status {r.returncode}"
        pytest.fail(f"stress_threads.py {' '.join(args)}: {how}\n"
                    f"--- stdout ---\n{r.stdout[:8000]}\n--- stderr ---\n{r.stderr[:8000]}",
                    pytrace=False)
    assert "stress_threads: OK" in r.stdout, r.stdout
    return r.stdout


def test_threads_recording_and_replaying_agree_with_one_thread():
    run("own", "shared", "mixed", "--seconds", "0.2", "--threads", "4")


def test_other_threads_cannot_touch_a_tape_being_recorded():
    run("hostile", "--seconds", "0.5", "--pairs", "2")
