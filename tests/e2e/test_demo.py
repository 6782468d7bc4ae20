"""`balance-worker demo` end to end: Tansu, the worker, the sample stream, and a clean exit."""

import contextlib
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import pytest

from worker.demo import story
from worker.models.records import TransactionType

ALL_TYPES = set(get_args(TransactionType))
TIMEOUT_S = 180


@dataclass(frozen=True)
class Run:
    """One finished demo run."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def report(self) -> str:
        return f"exit {self.returncode} after {self.seconds:.1f}s\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def _command(*args: str) -> list[str]:
    exe = Path(sys.executable).with_name("balance-worker")
    found = str(exe) if exe.exists() else shutil.which("balance-worker")
    assert found, "the balance-worker console script is not installed"
    return [found, "demo", *args]


def _launch(*args: str) -> subprocess.Popen[str]:
    # A ^C must reach the demo even when the test runner was started with SIGINT ignored (in the background).
    return subprocess.Popen(
        _command(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """Stop the demo as a user would (it cleans up), then kill it if it hangs; return its output."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()


def _finish(proc: subprocess.Popen[str], began: float, timeout: float, earlier: str = "") -> Run:
    """Wait for the demo to exit; fail (after stopping it) past the timeout."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        out, err = _stop(proc)
        run = Run(proc.returncode, earlier + out, err, time.monotonic() - began)
        pytest.fail(f"the demo did not finish within {timeout}s\n{run.report()}")
    return Run(proc.returncode, earlier + out, err, time.monotonic() - began)


def _read_until(proc: subprocess.Popen[str], pattern: str, timeout: float) -> str:
    """Read the demo's stdout until a line matches `pattern`; return everything read so far."""
    assert proc.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    stdout = proc.stdout

    def pump() -> None:  # a thread, so waiting never misses lines already buffered
        for line in stdout:
            lines.put(line)
            if re.search(pattern, line):
                return
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    with contextlib.suppress(queue.Empty):
        while line := lines.get(timeout=max(0.0, deadline - time.monotonic())):
            seen.append(line)
            if re.search(pattern, line):
                return "".join(seen)
    out, err = _stop(proc)
    run = Run(proc.returncode, "".join(seen) + out, err, timeout)
    pytest.fail(f"no line matching {pattern!r} from the demo\n{run.report()}")


def _leftovers(stdout: str) -> list[str]:
    """Processes still alive that the demo started: its printed pids, Tansu on its port, anything in its workdir."""
    tansu = re.search(r"^tansu\s+pid (\d+) on ([\d.]+:\d+)", stdout, re.M)
    worker = re.search(r"^worker\s+pid (\d+) .*log (\S+)/worker\.log$", stdout, re.M)
    assert tansu and worker, f"the demo did not print its processes:\n{stdout}"
    pids = {tansu.group(1), worker.group(1)}
    markers = (f"tcp://{tansu.group(2)}".encode(), worker.group(2).encode())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or entry.name == str(os.getpid()):
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone meanwhile, or not ours
            continue
        if not cmdline:  # a zombie is dead already
            continue
        if entry.name in pids or any(m in cmdline or m in environ for m in markers):
            command = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{entry.name}: {command}")
    return found


@pytest.fixture(scope="module")
def finished() -> Run:
    """`balance-worker demo --events <the whole sample story>`, run once for this module."""
    began = time.monotonic()
    return _finish(_launch("--events", str(len(story(3)))), began, TIMEOUT_S)


def test_demo_exits_cleanly(finished: Run) -> None:
    assert finished.returncode == 0, finished.report()
    assert "-- stopping the worker and tansu" in finished.stdout, finished.report()


def test_demo_shows_every_transaction_type(finished: Run) -> None:
    shown = set(re.findall(r"^txn\s+cus_\d+\s+(\w+)\s+-?\d+ [a-z]{3}\s", finished.stdout, re.M))
    assert shown == ALL_TYPES, finished.report()


def test_demo_shows_summaries_and_the_dead_letter(finished: Run) -> None:
    assert re.search(r"^summary\s+cus_\d+\s+credit held: .*usd \d+ \(", finished.stdout, re.M), finished.report()
    assert re.search(r"^dlq\s+cus_\d+\s+invalid_json\s+not UTF-8 JSON", finished.stdout, re.M), finished.report()


def test_demo_amounts_are_integers(finished: Run) -> None:
    row = r"^txn\s+\S+\s+\S+\s+(-?\d+) ([a-z]{3})\s+(-?[\d,]+(?:\.\d\d)?) ([A-Z]{3})\s+(-?\d+)\s"
    rows = re.findall(row, finished.stdout, re.M)
    assert rows, finished.report()
    assert ("-5000", "usd", "-50.00", "USD", "-5000") in rows


def test_demo_leaves_no_process_behind(finished: Run) -> None:
    assert _leftovers(finished.stdout) == []


def test_interrupted_demo_stops_everything() -> None:
    began = time.monotonic()
    proc = _launch()
    stdout = _read_until(proc, r"^-- the sample stream is through", TIMEOUT_S)
    proc.send_signal(signal.SIGINT)
    run = _finish(proc, began, 60, earlier=stdout)
    assert run.returncode == 0, run.report()
    assert "-- interrupted" in run.stdout, run.report()
    assert "Traceback" not in run.stderr, run.report()
    assert _leftovers(run.stdout) == []
