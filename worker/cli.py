"""The `balance-worker` command: Faust's command line for the app, plus our own tools."""

import gc
import importlib
import sys

from worker.settings import load_settings

TOOLS = {
    "demo": "worker.demo",
    "bench": "worker.bench",
    "contracts": "worker.contracts",
    "chaos": "worker.chaos",
    "reader-bench": "worker.reader_bench",
}
"""Subcommands that are not Faust's: each module's `main(argv)` runs it."""

GC_THRESHOLDS = (100_000, 50, 100)
"""The cyclic collector's thresholds for the worker (Python's are 700, 10, 10).

The worker makes a few container objects per event that reference counting frees, and almost no cycles;
at Python's thresholds the collector ran 2,000 times in a 50,000-event run and took 15% of the worker's
CPU, its full collections about 100 ms each. Objects made before the worker starts are frozen out of it.
"""


def main() -> None:
    """Run a tool (`balance-worker demo`, `bench`, ...) or Faust's command line (`balance-worker worker`)."""
    if len(sys.argv) > 1 and sys.argv[1] in TOOLS:
        importlib.import_module(TOOLS[sys.argv[1]]).main(sys.argv[2:])
        return
    from worker.app import create_app
    from worker.streams.sinks import FENCED_EXIT_CODE, Fenced

    app = create_app(load_settings())
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        app.main()
    except Fenced:
        raise SystemExit(FENCED_EXIT_CODE) from None
