"""`/healthz` (the process is alive) and `/readyz` (recovered, with partitions assigned)."""

from typing import Any, cast

import faust
from faust.web import Request, Response, View


def readiness(app: faust.App) -> tuple[bool, str]:
    """Whether the worker serves its partitions, and why not."""
    if app.rebalancing:
        return False, "rebalancing"
    if app.in_recovery or not cast(Any, app.tables).recovery.completed.is_set():
        return False, "recovering tables"
    try:
        assigned = app.consumer.assignment()
    except Exception:  # the consumer is not started yet
        return False, "starting"
    if not assigned:
        return False, "no partitions assigned"
    return True, "ready"


def register(app: faust.App) -> None:
    """Serve both probes on the worker's web port."""

    @app.page("/healthz")
    async def healthz(web: View, request: Request) -> Response:
        return web.json({"status": "alive"})

    @app.page("/readyz")
    async def readyz(web: View, request: Request) -> Response:
        ready, reason = readiness(app)
        return web.json({"status": reason}, status=200 if ready else 503)
