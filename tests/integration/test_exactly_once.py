"""`exactly_once`: on a broker without transactions the worker stops with a clear message, and a worker whose
transactional ids another owner took stops without writing."""

import asyncio
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from tests.conftest import WORKER_SETTINGS
from tests.integration.conftest import Rig
from worker.brokers.tansu import TansuBroker
from worker.harness.worker_process import Names, WorkerProcess
from worker.sample import command, envelope

TIMEOUT = 120.0


def test_exactly_once_on_tansu_says_why_it_cannot_start(tmp_path: Path) -> None:
    with TansuBroker(log_dir=tmp_path / "tansu") as broker:
        settings = {**Names("eos").settings(), "PROCESSING_GUARANTEE": "exactly_once"}
        proc = WorkerProcess(broker.bootstrap, tmp_path / "worker", settings).start()
        assert proc.proc is not None
        code = proc.proc.wait(timeout=120)
    log = proc.log_path.read_text(errors="replace")
    assert code != 0
    assert "BALANCE_PROCESSING_GUARANTEE=exactly_once needs a broker with transactions" in log
    assert "UnknownError" not in log.split("needs a broker with transactions")[0].splitlines()[-1]


async def fence(bootstrap: str, transactional_id: str) -> AIOKafkaProducer:
    """A started producer with this transactional id: it fences the id's earlier producer."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=transactional_id)
    await producer.start()
    return producer


async def test_a_worker_whose_producers_another_owner_fenced_exits_with_code_3(rig: Rig) -> None:
    proc = rig.worker(PROCESSING_GUARANTEE="exactly_once").start()
    topic = rig.topic("balance_commands")

    def adjustment(n: int) -> bytes:
        return orjson.dumps(envelope(f"evt_fence_{n}", "customer_balance.adjustment", command("cus_f", -n, "usd"), n))

    await rig.producer.send(topic, b"cus_f", adjustment(1))
    await rig.collector.wait_until(lambda out: len(out.transactions) == 1, TIMEOUT, "the first transaction")
    partitions = int(WORKER_SETTINGS["PARTITIONS"])  # every topic's: one topic group per reader
    ids = [
        f"{rig.names.app_id}-{reader}-{p}-of-{partitions}" for reader in ("ingest", "ledger") for p in range(partitions)
    ]
    fencers = await asyncio.gather(*(fence(rig.kafka.bootstrap, tid) for tid in ids))
    try:
        await rig.producer.send(topic, b"cus_f", adjustment(2))
        assert proc.proc is not None
        code = await asyncio.to_thread(proc.proc.wait, TIMEOUT)
    finally:
        await asyncio.gather(*(f.stop() for f in fencers))
    assert code == 3, proc.log_tail()
    assert "was fenced: another worker owns its partition" in proc.log_path.read_text(errors="replace")
    assert len(rig.collector.output.transactions) == 1, "nothing written once fenced"
