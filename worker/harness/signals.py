"""Signal handling for the tools that start brokers and workers (demo, chaos)."""

import contextlib
import signal
from collections.abc import Callable, Iterator
from typing import NoReturn


@contextlib.contextmanager
def interrupts_ignored() -> Iterator[None]:
    """Ignore SIGINT and SIGTERM while cleaning up, so a second ^C cannot leave processes behind."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def exit_with(run: Callable[[], int]) -> NoReturn:
    """Run a tool with SIGTERM stopping it like ^C, and exit with its code."""
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        code = run()
    finally:
        signal.signal(signal.SIGTERM, previous)
    raise SystemExit(code)
