"""Apache Kafka as a single-node KRaft broker+controller, run from the jars that deploy/kafka/fetch.sh fetches."""

from __future__ import annotations

import base64
import os
import subprocess
import uuid
from collections.abc import Mapping
from pathlib import Path

from worker.brokers.process import BrokerError, BrokerProcess, free_ports, java_binary

#: Must match `kafka.version` in deploy/kafka/pom.xml.
KAFKA_VERSION = "4.4.0"
LIBS_ENV = "BALANCE_KAFKA_LIBS"
FETCH_SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "fetch.sh"

_LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
"""


def default_libs_dir() -> Path:
    """`$BALANCE_KAFKA_LIBS`, else the cache dir fetch.sh fills by default."""
    env = os.environ.get(LIBS_ENV)
    if env:
        return Path(env)
    return Path.home() / ".cache" / "balance-worker" / "kafka" / KAFKA_VERSION / "libs"


def fetch_libs(libs_dir: Path | None = None) -> Path:
    """Run deploy/kafka/fetch.sh (Maven; a no-op once fetched) and return the libs dir."""
    if not FETCH_SCRIPT.exists():
        raise BrokerError(f"{FETCH_SCRIPT} not found: fetch the Kafka jars yourself and set {LIBS_ENV}")
    target = libs_dir or default_libs_dir()
    out = subprocess.run(["bash", str(FETCH_SCRIPT), str(target)], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


def _cluster_id() -> str:
    while True:  # Kafka's own Uuid.randomUuid() also avoids ids that start with '-'
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


class KafkaBroker(BrokerProcess):
    """Single-node Kafka (process.roles=broker,controller) on 127.0.0.1, data kept in `data_dir` across restarts.

    `config` overrides or extends the generated server.properties. Group session timeouts down to 1s are allowed.
    """

    name = "kafka"

    def __init__(
        self,
        libs_dir: Path | None = None,
        data_dir: Path | None = None,
        port: int | None = None,
        *,
        controller_port: int | None = None,
        heap: str = "512m",
        config: Mapping[str, str] | None = None,
        start_timeout: float = 90.0,
        stop_timeout: float = 30.0,
    ) -> None:
        super().__init__(port=port, workdir=data_dir, start_timeout=start_timeout, stop_timeout=stop_timeout)
        self.libs_dir = Path(libs_dir) if libs_dir is not None else default_libs_dir()
        self.controller_port = controller_port or next(p for p in free_ports(2) if p != self.port)
        self.heap = heap
        self.config = dict(config or {})

    @property
    def data_dir(self) -> Path:
        """Directory with server.properties, the log dir and kafka.log."""
        return self.workdir

    @property
    def log_dirs(self) -> Path:
        """Kafka's `log.dirs` (topic data and the KRaft metadata log)."""
        return self.workdir / "kraft-logs"

    def server_properties(self) -> dict[str, str]:
        """The broker configuration written to server.properties."""
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{self.host}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "log.dirs": str(self.log_dirs),
            "num.partitions": "8",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "auto.create.topics.enable": "true",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "8",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "group.min.session.timeout.ms": "1000",
            # After a kill the restarted broker must wait for its old registration to expire: keep that short.
            "broker.heartbeat.interval.ms": "500",
            "broker.session.timeout.ms": "3000",
            # Compaction observable within seconds: roll segments often, clean any dirt, poll the cleaner fast.
            "log.cleaner.enable": "true",
            "log.cleaner.threads": "1",
            "log.cleaner.backoff.ms": "500",
            "log.cleaner.min.cleanable.ratio": "0.01",
            "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
            "log.roll.ms": "5000",
            "log.segment.delete.delay.ms": "1000",
            "num.network.threads": "2",
            "num.io.threads": "4",
            "num.recovery.threads.per.data.dir": "1",
        }
        props.update(self.config)
        return props

    def prepare(self) -> None:
        """Check the jars, write the config files and format the storage on first start."""
        if not any(self.libs_dir.glob("kafka_2.13-*.jar")):
            raise BrokerError(f"no Kafka jars in {self.libs_dir}: run deploy/kafka/fetch.sh (or set {LIBS_ENV})")
        props = "".join(f"{k}={v}\n" for k, v in self.server_properties().items())
        (self.workdir / "server.properties").write_text(props)
        (self.workdir / "log4j2.properties").write_text(_LOG4J2)
        if (self.log_dirs / "meta.properties").exists():
            return
        fmt = [*self._java(), "kafka.tools.StorageTool", "format", "-t", _cluster_id(), "-c", "server.properties"]
        with self.log_path.open("ab") as log:
            done = subprocess.run(fmt, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        if done.returncode != 0:
            raise BrokerError(f"kafka storage format failed ({done.returncode})\n{self.log_tail()}")

    def _java(self) -> list[str]:
        return [
            java_binary(),
            f"-Xmx{self.heap}",
            "-Xms64m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}",
            "-cp",
            str(self.libs_dir / "*"),
        ]

    def command(self) -> list[str]:
        """`java ... kafka.Kafka server.properties`."""
        return [*self._java(), "kafka.Kafka", str(self.workdir / "server.properties")]
