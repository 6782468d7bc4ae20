"""Which CPUs the bench's processes run on: with `--pin`, the measured ones apart from the rest."""

import contextlib
import os

PIN_PASSES = 3
"""Passes over a process's threads at most, for threads that start while it is pinned (`pin`)."""


def pin(pid: int, cpus: set[int]) -> None:
    """Let every thread of the process run only on `cpus`; a thread started later inherits its starter's CPUs.

    Passes over the threads until one finds all of them pinned: a thread may start during a pass. A process
    that has exited has nothing to pin: what waits for it sees its exit.
    """
    for _ in range(PIN_PASSES):
        moved = False
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except FileNotFoundError:
            return
        for task in tasks:
            with contextlib.suppress(ProcessLookupError):  # the thread ended meanwhile
                if os.sched_getaffinity(int(task)) != cpus:
                    os.sched_setaffinity(int(task), cpus)
                    moved = True
        if not moved:
            return


class Placement:
    """Where the measured processes (the workers, the raw pipe) and the rest (the broker, the driver) run.

    Unpinned, every process runs on any CPU, as the machine's scheduler places it, and this does nothing.
    Pinned, the rest get the first CPU and the measured processes the others: on two CPUs, a worker then has a
    core that the broker and the driver never take from it, as a worker deployed apart from its broker would.
    """

    def __init__(self, pinned: bool) -> None:
        cpus = sorted(os.sched_getaffinity(0))
        if pinned and len(cpus) < 2:
            raise SystemExit(f"--pin needs two CPUs or more; this process may run on {len(cpus)}")
        self.pinned = pinned
        self.rest_cpus = set(cpus[:1])
        self.measured_cpus = set(cpus[1:])

    def measured(self, pid: int | None) -> None:
        """Place a measured process."""
        if self.pinned and pid is not None:
            pin(pid, self.measured_cpus)

    def rest(self, pid: int | None) -> None:
        """Place the broker or the driver."""
        if self.pinned and pid is not None:
            pin(pid, self.rest_cpus)
