"""`balance-worker worker` as a subprocess: start, stop, kill -9 and restart it."""

import os
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from worker.brokers.process import die_with_parent, free_ports
from worker.settings import ENV_PREFIX

WORKER_CODE = "from worker.cli import main; main()"
READY = b"Worker ready"
"""What a worker logs (at info level) once its partitions are recovered and it processes events."""
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # Faust's spinner, in the log

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
    """An app id and topic names under one prefix, so runs never share state on a broker."""

    prefix: str

    @property
    def app_id(self) -> str:
        """The app id (and consumer group)."""
        return f"{self.prefix}-app"

    @property
    def by_customer(self) -> str:
        """The internal by-customer topic, named by the app (`worker/streams/topics.py`)."""
        return f"{self.app_id}-ledger-by-customer"

    @property
    def customers_changelog(self) -> str:
        """The customers table's changelog, named by Faust from the app id."""
        return f"{self.app_id}-customers-changelog"

    def topic(self, setting: str) -> str:
        """The topic of a `BALANCE_TOPIC_<SETTING>` setting, e.g. `topic("dlq")`."""
        return f"{self.prefix}.{TOPIC_SETTINGS[setting]}"

    def settings(self) -> dict[str, str]:
        """The app id and topic settings, without the prefix."""
        out = {"APP_ID": self.app_id}
        out.update({f"TOPIC_{k.upper()}": self.topic(k) for k in TOPIC_SETTINGS})
        return out


class WorkerExited(RuntimeError):
    """The worker process ended when it should be running."""


@dataclass
class WorkerProcess:
    """One worker on `bootstrap` with its own data dir and log.

    `settings` are `BALANCE_*` values without the prefix; `BALANCE_*` variables of
    this process are not passed on, so a run depends on nothing but its arguments.
    """

    bootstrap: str
    workdir: Path
    settings: dict[str, str] = field(default_factory=dict)
    loglevel: str = "info"
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    web_port: int = 0

    @property
    def log_path(self) -> Path:
        """The worker's stdout and stderr, appended across restarts."""
        return self.workdir / "worker.log"

    @property
    def pid(self) -> int | None:
        """The process id once started."""
        return None if self.proc is None else self.proc.pid

    @property
    def alive(self) -> bool:
        """Whether the process is running."""
        return self.proc is not None and self.proc.poll() is None

    def env(self) -> dict[str, str]:
        """The worker's environment."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
        settings = {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "DATA_DIR": str(self.workdir / "data"),
            "WEB_PORT": str(self.web_port),
            "WEB_BIND": "127.0.0.1",
            **self.settings,
        }
        env.update({ENV_PREFIX + k: v for k, v in settings.items()})
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def start(self) -> "WorkerProcess":
        """Launch the worker; the kernel kills it if this process dies first."""
        if self.alive:
            raise RuntimeError("the worker is already running")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        self.web_port = int(self.settings.get("WEB_PORT") or free_ports()[0])
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start {self.starts} =====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-c", WORKER_CODE, "worker", "-l", self.loglevel],
                env=self.env(),
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a terminal ^C reaches us, and we stop it ourselves
                preexec_fn=die_with_parent if threading.current_thread() is threading.main_thread() else None,
            )
        return self

    def check(self) -> None:
        """Raise `WorkerExited` when the worker has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            raise WorkerExited(f"the worker exited with code {self.proc.returncode}")

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, wait up to `timeout`, then SIGKILL; returns the exit code (always reaps).

        The process is read once: a stop in another thread (the chaos suite stops workers off its event loop)
        read `self.proc` again after its wait, and once the worker had been started again meanwhile it waited
        for the new process, which it never signalled (`churn` seed 70 hung there twice).
        """
        proc = self.proc
        if proc is None:
            return 0
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
        return proc.wait()

    def kill(self) -> None:
        """kill -9, and reap."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self, lines: int = 60) -> str:
        """The last lines of the log, without terminal escapes."""
        try:
            text = ANSI_ESCAPE.sub("", self.log_path.read_text(errors="replace"))
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])
