"""The `balance-worker` command: Faust's command line for the app, plus `demo`."""

import sys

from worker.settings import load_settings


def main() -> None:
    """Run the command line; `demo` runs the embedded-broker demo."""
    if len(sys.argv) > 1 and sys.argv[1] == "demo":
        from worker.demo import main as demo_main

        demo_main(sys.argv[2:])
        return
    from worker.app import create_app

    create_app(load_settings()).main()
