"""The bench starts a run once the broker and the workers are quiet, and pauses the workers while it writes."""

import subprocess
import sys

from worker.bench import paused, quiet


async def test_quiet_processes_are_waited_for_one_window() -> None:
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert 0.2 <= await quiet([idle.pid], window_s=0.2, limit_s=5.0) < 1.0
    finally:
        idle.kill()


async def test_a_busy_process_is_waited_for_until_the_limit() -> None:
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        assert await quiet([busy.pid], window_s=0.2, limit_s=1.0) >= 1.0
    finally:
        busy.kill()


async def test_paused_processes_use_no_cpu_until_the_pause_ends() -> None:
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        with paused([busy.pid, None]):
            assert await quiet([busy.pid], window_s=0.2, limit_s=2.0) < 1.0, "stopped at once"
        assert await quiet([busy.pid], window_s=0.2, limit_s=1.0) >= 1.0, "running again"
    finally:
        busy.kill()
