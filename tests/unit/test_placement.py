"""`--pin` gives the bench's measured processes CPUs of their own, every thread of them; unpinned, it moves
nothing."""

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from worker.bench import parse_args
from worker.harness.placement import Placement, pin

THREADS = """
import threading, time
for _ in range(3):
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
print("ready", flush=True)
time.sleep(60)
"""

needs_two_cpus = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="pinning apart needs two CPUs")


@pytest.fixture
def threaded() -> Iterator[subprocess.Popen[str]]:
    """A process of four threads."""
    proc = subprocess.Popen([sys.executable, "-c", THREADS], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        yield proc
    finally:
        proc.kill()
        proc.wait()


def cpus_of_threads(pid: int) -> list[set[int]]:
    return [os.sched_getaffinity(int(task)) for task in os.listdir(f"/proc/{pid}/task")]


@needs_two_cpus
def test_a_pinned_process_runs_every_thread_on_its_cpus(threaded: subprocess.Popen[str]) -> None:
    last = max(os.sched_getaffinity(0))
    pin(threaded.pid, {last})
    assert cpus_of_threads(threaded.pid) == [{last}] * 4


@needs_two_cpus
def test_pinned_the_measured_processes_and_the_rest_run_apart(threaded: subprocess.Popen[str]) -> None:
    place = Placement(True)
    cpus = os.sched_getaffinity(0)
    assert place.rest_cpus and place.measured_cpus
    assert place.rest_cpus | place.measured_cpus == cpus and not place.rest_cpus & place.measured_cpus
    place.measured(threaded.pid)
    assert cpus_of_threads(threaded.pid) == [place.measured_cpus] * 4
    place.rest(threaded.pid)
    assert cpus_of_threads(threaded.pid) == [place.rest_cpus] * 4


def test_unpinned_nothing_moves(threaded: subprocess.Popen[str]) -> None:
    before = cpus_of_threads(threaded.pid)
    place = Placement(False)
    place.measured(threaded.pid)
    place.rest(threaded.pid)
    place.measured(None)
    assert cpus_of_threads(threaded.pid) == before


def test_an_exited_process_has_nothing_to_pin() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    pin(proc.pid, os.sched_getaffinity(0))  # reaped: no /proc entry, no error


def test_pinning_needs_two_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    with pytest.raises(SystemExit, match="two CPUs"):
        Placement(True)
    assert Placement(False).pinned is False


def test_the_bench_pins_only_when_told() -> None:
    assert parse_args([]).pin is False
    assert parse_args(["--pin"]).pin is True
