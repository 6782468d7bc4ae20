"""`/dashboard`: a self-contained live page of the whole cluster, and the JSON it polls.

Each worker samples its own event count and consumer lag every few seconds and
keeps the last minutes; `/dashboard/local.json` is that worker's view, and
`/dashboard/data.json` merges the views of every worker in the group.
"""

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Iterable
from importlib.resources import files
from typing import Any

import aiohttp
import faust
import orjson
from faust.web import Request, Response, View
from prometheus_client.metrics import MetricWrapperBase

from worker.metrics import EVENTS, TRANSACTIONS
from worker.streams.tables import CustomerTable, decode_state, entries
from worker.web.metrics import LagGauge

log = logging.getLogger(__name__)

SAMPLE_INTERVAL_S = 2.0
WINDOW_S = 600
"""How far back the throughput and lag charts go."""
TOP = 10
PEER_TIMEOUT_S = 2.0

PAGE = files("worker.web").joinpath("static", "dashboard.html").read_bytes()


def counter_values(counter: MetricWrapperBase, label: str) -> Counter[str]:
    """A labelled counter's totals by one label."""
    out: Counter[str] = Counter()
    for metric in counter.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                out[sample.labels[label]] += int(sample.value)
    return out


def top_credit(states: Iterable[tuple[bytes, bytes]], n: int = TOP) -> list[dict[str, Any]]:
    """The `n` largest credits held, one row per (customer, currency)."""
    rows: list[dict[str, Any]] = []
    for key, value in states:
        for currency, balance in decode_state(value).balances.items():
            if balance < 0:
                rows.append({"customer": key.decode(errors="replace"), "currency": currency, "credit": -balance})
    rows.sort(key=lambda r: (-int(r["credit"]), r["customer"], r["currency"]))
    return rows[:n]


class Dashboard:
    """This worker's samples and snapshot, and the merge of every worker's."""

    def __init__(self, app: faust.App, customers: CustomerTable, lag: LagGauge) -> None:
        self.app = app
        self.customers = customers
        self.lag = lag
        self.samples: deque[tuple[float, int, int]] = deque(maxlen=int(WINDOW_S / SAMPLE_INTERVAL_S))

    def sample(self) -> None:
        """Record (time, events handled so far, total lag)."""
        events = sum(counter_values(EVENTS, "outcome").values())
        self.samples.append((round(time.time(), 1), events, sum(self.lag.values.values())))

    def local(self) -> dict[str, Any]:
        """This worker's view."""
        outcomes: Counter[str] = Counter()
        dlq: Counter[str] = Counter()
        for metric in EVENTS.collect():
            for s in metric.samples:
                if s.name.endswith("_total"):
                    outcomes[s.labels["outcome"]] += int(s.value)
                    if s.labels["outcome"] == "dlq":
                        dlq[s.labels["code"]] += int(s.value)
        return {
            "worker": str(self.app.conf.canonical_url),
            "samples": list(self.samples),
            "outcomes": outcomes,
            "dlq": dlq,
            "transactions": counter_values(TRANSACTIONS, "type"),
            "top": top_credit(entries(self.customers.table).items()),
        }

    async def cluster(self) -> dict[str, Any]:
        """Every worker's view, merged."""
        here = str(self.app.conf.canonical_url).rstrip("/")
        peers = {str(url).rstrip("/") for url in self.app.router.tables_metadata()} - {here}
        views = [self.local(), *await asyncio.gather(*(self._peer(url) for url in sorted(peers)))]
        return merge([v for v in views if v is not None])

    async def _peer(self, url: str) -> dict[str, Any] | None:
        try:
            async with self.app.http_client.get(
                f"{url}/dashboard/local.json", timeout=aiohttp.ClientTimeout(total=PEER_TIMEOUT_S)
            ) as response:
                view: dict[str, Any] = await response.json()
                return view
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.debug("no dashboard data from %s: %s", url, type(exc).__name__)
            return None


def merge(views: list[dict[str, Any]]) -> dict[str, Any]:
    """Sums of the counters, series summed per sampling slot, and the overall top credits."""
    series: dict[int, list[int]] = {}
    out: dict[str, Any] = {"workers": [], "outcomes": Counter(), "dlq": Counter(), "transactions": Counter()}
    top: dict[tuple[str, str], int] = {}
    for view in views:
        out["workers"].append(view["worker"])
        for name in ("outcomes", "dlq", "transactions"):
            out[name].update(view[name])
        for t, events, lag in view["samples"]:
            slot = series.setdefault(int(t // SAMPLE_INTERVAL_S), [0, 0])
            slot[0] += events
            slot[1] += lag
        for row in view["top"]:  # a standby replica may report a customer too: same value
            top[(row["customer"], row["currency"])] = row["credit"]
    slots = sorted(series)
    out["series"] = [[slot * SAMPLE_INTERVAL_S, *series[slot]] for slot in slots[:-1] or slots]
    ranked = sorted(top.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]
    out["top"] = [{"customer": c, "currency": cur, "credit": credit} for (c, cur), credit in ranked]
    return out


def register(app: faust.App, customers: CustomerTable, lag: LagGauge) -> Dashboard:
    """Serve the page and its data; sample every few seconds."""
    board = Dashboard(app, customers, lag)

    async def sample() -> None:
        board.sample()

    app.timer(SAMPLE_INTERVAL_S, name="dashboard.sample")(sample)

    @app.page("/dashboard")
    async def page(web_view: View, request: Request) -> Response:
        return web_view.bytes(PAGE, headers={"Content-Type": "text/html; charset=utf-8"})

    @app.page("/dashboard/local.json")
    async def local(web_view: View, request: Request) -> Response:
        return web_view.bytes(orjson.dumps(board.local()), content_type="application/json")

    @app.page("/dashboard/data.json")
    async def data(web_view: View, request: Request) -> Response:
        return web_view.bytes(orjson.dumps(await board.cluster()), content_type="application/json")

    return board
