"""The `balance-worker` command: Faust's command line for the app, plus our own tools."""

import importlib
import sys

from worker.settings import load_settings

TOOLS = {
    "demo": "worker.demo",
    "bench": "worker.bench",
    "contracts": "worker.contracts",
    "chaos": "worker.chaos",
}
"""Subcommands that are not Faust's: each module's `main(argv)` runs it."""


def main() -> None:
    """Run a tool (`balance-worker demo`, `bench`, ...) or Faust's command line (`balance-worker worker`)."""
    if len(sys.argv) > 1 and sys.argv[1] in TOOLS:
        importlib.import_module(TOOLS[sys.argv[1]]).main(sys.argv[2:])
        return
    from worker.app import create_app

    create_app(load_settings()).main()
