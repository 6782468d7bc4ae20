"""`WorkerProcess.stop` waits for the process it stopped, even if the worker is started again meanwhile."""

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from worker.harness.worker_process import WorkerProcess


class Restarted(subprocess.Popen[bytes]):
    """A process whose wait ends by the worker being started again (as the chaos suite's loop may, between a
    stop's wait and its return)."""

    worker: WorkerProcess
    again: subprocess.Popen[bytes]

    def wait(self, timeout: float | None = None) -> int:
        code = super().wait(timeout)
        self.worker.proc = self.again
        return code


def test_a_stop_returns_the_exit_code_of_the_process_it_stopped(tmp_path: Path) -> None:
    worker = WorkerProcess("127.0.0.1:1", tmp_path)
    first = Restarted([sys.executable, "-c", "import time; time.sleep(30)"])
    again = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    first.worker, first.again = worker, again
    worker.proc = first
    codes: list[Any] = []
    stopping = threading.Thread(target=lambda: codes.append(worker.stop(timeout=10)), daemon=True)
    try:
        stopping.start()
        stopping.join(15)
        assert codes == [-15], "the stopped process's code, not a wait for the one started after"
        assert again.poll() is None, "the new process is left running"
    finally:
        again.kill()
        again.wait()
