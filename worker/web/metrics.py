"""`/metrics`: the Prometheus exposition of this worker's collectors."""

import faust
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


def register(app: faust.App) -> None:
    """Serve `/metrics` on the worker's web port."""

    @app.page("/metrics")
    async def metrics(web: View, request: Request) -> Response:
        return web.bytes(generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})
