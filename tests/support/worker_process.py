"""A `balance-worker worker` subprocess with its own app id, topics and data dir."""

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from worker.brokers.process import free_ports

TOPIC_SETTINGS = {
    "invoice_events": "billing.invoice.events",
    "credit_note_events": "billing.credit_note.events",
    "checkout_events": "billing.checkout.events",
    "balance_commands": "billing.balance.commands",
    "transactions": "billing.customer_balance_transactions",
    "summaries": "billing.credit_balance_summaries",
    "dlq": "billing.balance.dlq",
}


@dataclass(frozen=True)
class Names:
    """One test's app id and topic names, so tests never share state on a broker."""

    prefix: str

    @property
    def app_id(self) -> str:
        return f"{self.prefix}-app"

    def topic(self, setting: str) -> str:
        return f"{self.prefix}.{TOPIC_SETTINGS[setting]}"

    def env(self) -> dict[str, str]:
        env = {"BALANCE_APP_ID": self.app_id}
        env.update({f"BALANCE_TOPIC_{k.upper()}": self.topic(k) for k in TOPIC_SETTINGS})
        return env


@dataclass
class WorkerProcess:
    """Start, stop, kill -9 and restart one worker; its log goes to `log_path`."""

    bootstrap: str
    names: Names
    workdir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def log_path(self) -> Path:
        return self.workdir / "worker.log"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.names.env())
        env.update(
            {
                "BALANCE_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
                "BALANCE_DATA_DIR": str(self.workdir / "data"),
                "BALANCE_WEB_PORT": str(free_ports()[0]),
                "BALANCE_PARTITIONS": "4",
                "BALANCE_SESSION_TIMEOUT_S": "6",
                "BALANCE_HEARTBEAT_INTERVAL_S": "1",
                "BALANCE_COMMIT_INTERVAL_S": "0.5",
            }
        )
        env.update(self.extra_env)
        return env

    def start(self) -> "WorkerProcess":
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start {self.starts} =====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-c", "from worker.cli import main; main()", "worker", "-l", "info"],
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def stop(self, timeout: float = 60) -> int:
        """Graceful stop (SIGTERM); returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"worker did not stop within {timeout}s") from None

    def kill(self) -> None:
        """kill -9."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
