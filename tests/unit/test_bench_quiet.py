"""The bench starts a latency run once the broker and the workers are quiet."""

import subprocess
import sys

from worker.bench import quiet


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
