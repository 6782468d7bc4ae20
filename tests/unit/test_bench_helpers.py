"""The bench starts a run once the broker and the workers are quiet, pauses the workers while it writes, offers
the latency runs half the worker's rate unless told a rate, keeps its files in memory unless told disk, and
warms the broker up on streams of their own."""

import gc
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from worker import bench
from worker.bench import (
    MEMORY_DIR,
    collector_off,
    event_ids,
    jit_cpu_seconds,
    offered_rate,
    output_count,
    parse_args,
    paused,
    quiet,
    renamed,
    run_dir,
)
from worker.sample import mixed


async def test_quiet_processes_are_waited_for_one_window() -> None:
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert 0.2 <= await quiet([idle.pid], window_s=0.2, limit_s=5.0) < 1.0
    finally:
        idle.kill()


SPINNING_CORES = 0.02
"""Less than a spinning process gets even on a loaded machine (the tests ran beside a chaos run)."""


async def test_a_busy_process_is_waited_for_until_the_limit() -> None:
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        assert await quiet([busy.pid], window_s=0.2, limit_s=1.0, cores=SPINNING_CORES) >= 1.0
    finally:
        busy.kill()


async def test_paused_processes_use_no_cpu_until_the_pause_ends() -> None:
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        with paused([busy.pid, None]):
            assert await quiet([busy.pid], window_s=0.2, limit_s=2.0, cores=SPINNING_CORES) < 1.0, "stopped at once"
        assert await quiet([busy.pid], window_s=0.2, limit_s=1.0, cores=SPINNING_CORES) >= 1.0, "running again"
    finally:
        busy.kill()


def test_the_latency_runs_are_offered_half_the_workers_rate_or_the_rate_given() -> None:
    assert offered_rate(parse_args([]), 18_000.0) == 9_000.0
    assert offered_rate(parse_args([]), 0.5) == 1.0
    assert offered_rate(parse_args(["--latency-rate", "8000"]), 18_000.0) == 8_000.0


def test_the_driver_times_with_its_cyclic_collector_off_and_turns_it_back_on() -> None:
    assert gc.isenabled()
    with collector_off():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_run_keeps_its_files_in_memory_unless_told_disk() -> None:
    assert parse_args([]).broker_data == "memory"
    memory, disk = run_dir("memory"), run_dir(parse_args(["--broker-data", "disk"]).broker_data)
    try:
        assert memory.parent == MEMORY_DIR and memory.is_dir()
        assert disk.parent == Path(tempfile.gettempdir()) and disk.is_dir()
    finally:
        shutil.rmtree(memory)
        shutil.rmtree(disk)


def test_a_memory_dir_without_room_for_a_run_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench, "MEMORY_MIN_FREE_BYTES", shutil.disk_usage(MEMORY_DIR).total + 1)
    with pytest.raises(SystemExit, match="--broker-data disk"):
        run_dir("memory")


def test_a_renamed_stream_has_new_customers_and_event_ids_and_the_same_outcomes() -> None:
    stream = list(mixed(2_000, customers=200, seed=5))
    warm, window = renamed(stream, "w"), renamed(stream, "w0")
    assert all(b"cus_" not in k + v for k, v in warm + window)
    assert {k for k, _ in warm}.isdisjoint(k for k, _ in window)
    ids = [dict(event_ids(s)).values() for s in (stream, warm, window)]
    assert set(ids[0]).isdisjoint(ids[1]) and set(ids[1]).isdisjoint(ids[2])
    assert output_count(warm) == output_count(window) == output_count(stream)


def test_only_a_jvm_has_jit_compiler_cpu() -> None:
    assert jit_cpu_seconds(os.getpid()) == 0.0
    assert jit_cpu_seconds(None) == 0.0


def test_the_warm_up_is_on_unless_told_off() -> None:
    assert parse_args([]).warm_up_seconds > 0
    assert parse_args(["--warm-up-seconds", "0"]).warm_up_seconds == 0
