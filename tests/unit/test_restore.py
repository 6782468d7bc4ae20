"""`restore`: an active changelog partition's fetch applied at once, as Faust's recovery loop would apply it."""

from typing import Any

import faust
import pytest
from faust.types import TP

from worker.streams.restore import Change, clear_end_on_rebalance, restore, skip_trailing_markers
from worker.streams.tables import CustomerTable


def message(tp: TP, offset: int, key: bytes, value: bytes | None) -> Any:
    return faust.types.Message(tp.topic, tp.partition, offset, 0.0, 0, [], key, value, None, tp=tp)


class Recovering:
    """An app whose recovery reads partition 3 of the customers' changelog, up to offset `highwater`."""

    def __init__(self, highwater: int = 4) -> None:
        self.app = faust.App("restore-test", broker="kafka://127.0.0.1:1")
        self.table = CustomerTable(self.app, 8).table
        self.tp = TP(self.table.changelog_topic.get_topic_name(), 3)
        self.recovery = self.app.tables.recovery
        self.recovery.in_recovery = True
        self.recovery.active_tps = {self.tp}
        self.recovery.tp_to_table = {self.tp: self.table}
        self.recovery.active_highwaters[self.tp] = highwater
        self.recovery.active_offsets[self.tp] = -1

    def fetch(self, *records: tuple[int, bytes, bytes | None], tp: TP | None = None) -> list[Any]:
        return [message(tp or self.tp, offset, key, value) for offset, key, value in records]

    @property
    def store(self) -> dict[bytes, bytes]:
        return dict(self.table.data.items())


def test_a_fetch_is_applied_in_order_with_deletions_and_the_recovery_ends_at_the_highwater() -> None:
    r = Recovering(highwater=4)
    first = r.fetch((0, b"a", b"a0"), (1, b"b", b"b1"), (2, b"a", b"a2"))
    assert restore(r.app, first, {})
    assert r.store == {b"a": b"a2", b"b": b"b1"}
    assert r.recovery.active_offsets[r.tp] == 2
    assert r.recovery.in_recovery and not r.recovery.signal_recovery_end.is_set(), "two records are left"
    assert restore(r.app, r.fetch((3, b"b", None), (4, b"c", b"c4")), {})
    assert r.store == {b"a": b"a2", b"c": b"c4"}
    assert r.recovery.active_offsets[r.tp] == 4
    assert not r.recovery.in_recovery and not r.app.in_recovery
    assert r.recovery.signal_recovery_end.is_set()


def test_records_at_or_below_the_offset_seen_are_skipped() -> None:
    r = Recovering(highwater=4)
    r.recovery.active_offsets[r.tp] = 1
    assert restore(r.app, r.fetch((0, b"a", b"old"), (1, b"b", b"old"), (2, b"c", b"c2")), {})
    assert r.store == {b"c": b"c2"}
    assert r.recovery.active_offsets[r.tp] == 2


def test_what_faust_buffered_is_older_and_is_applied_first() -> None:
    r = Recovering(highwater=9)
    buffered = message(r.tp, 0, b"a", b"buffered")
    r.recovery.buffers[r.table].append(Change(b"a", b"buffered", buffered))
    r.recovery.active_offsets[r.tp] = 0
    assert restore(r.app, r.fetch((1, b"a", b"fetched")), {r.tp: 0})
    assert r.store == {b"a": b"fetched"}
    assert r.recovery.buffers[r.table] == []


@pytest.mark.parametrize("case", ["not recovering", "a standby", "records queued", "a record handed over"])
def test_otherwise_the_records_go_fausts_way_and_nothing_is_applied(case: str) -> None:
    r = Recovering(highwater=4)
    tp, handed = r.tp, {}
    if case == "not recovering":
        r.recovery.in_recovery = False
    elif case == "a standby":
        tp = TP(r.tp.topic, 5)
        r.recovery.standby_tps = {tp}
    elif case == "records queued":
        r.app.tables.changelog_queue.put_nowait(object())
    else:
        handed = {r.tp: 2}
        r.recovery.active_offsets[r.tp] = 1
    assert not restore(r.app, r.fetch((2, b"a", b"a2"), (3, b"b", b"b3"), tp=tp), handed)
    assert r.store == {}
    assert r.recovery.active_offsets[r.tp] in (-1, 1)


def test_a_handed_record_taken_by_fausts_loop_lets_the_next_fetch_through() -> None:
    r = Recovering(highwater=4)
    r.recovery.active_offsets[r.tp] = 2
    assert restore(r.app, r.fetch((3, b"a", b"a3")), {r.tp: 2})


async def test_the_end_signal_a_restore_leaves_is_cleared_when_the_next_rebalance_starts() -> None:
    r = Recovering(highwater=0)
    clear_end_on_rebalance(r.app)
    assert restore(r.app, r.fetch((0, b"a", b"a0")), {})
    assert r.recovery.signal_recovery_end.is_set(), "set for a recovery that may not wait for it yet"
    await r.app.on_partitions_revoked.send({r.tp})
    assert not r.recovery.signal_recovery_end.is_set(), "the next recovery waits for its own end"


def test_a_partition_read_past_its_highwater_is_recovered_once_its_records_are_applied() -> None:
    """exactly_once: the changelog ends with a transaction marker, which no record's offset reaches."""
    r = Recovering(highwater=4)
    assert restore(r.app, r.fetch((1, b"a", b"a1"), (2, b"b", b"b2")), {})
    skip_trailing_markers(r.app, {r.tp: 4}.get)
    assert r.recovery.in_recovery and r.recovery.active_offsets[r.tp] == 2, "offset 4 is not read yet"
    skip_trailing_markers(r.app, {}.get)
    assert r.recovery.in_recovery, "no position known"
    skip_trailing_markers(r.app, {r.tp: 5}.get)
    assert r.recovery.active_offsets[r.tp] == 4
    assert not r.recovery.in_recovery and r.recovery.signal_recovery_end.is_set()
    assert r.store == {b"a": b"a1", b"b": b"b2"}


def test_no_partition_counts_as_read_past_its_highwater_while_records_wait_for_fausts_loop() -> None:
    r = Recovering(highwater=4)
    r.app.tables.changelog_queue.put_nowait(object())
    skip_trailing_markers(r.app, {r.tp: 5}.get)
    assert r.recovery.in_recovery and r.recovery.active_offsets[r.tp] == -1, "the loop would skip them as seen"


def test_the_recovery_ends_only_once_every_active_partition_is_read_past_its_highwater() -> None:
    r = Recovering(highwater=4)
    other = TP(r.tp.topic, 6)
    r.recovery.active_tps = {r.tp, other}
    r.recovery.tp_to_table[other] = r.table
    r.recovery.active_highwaters[other] = 9
    r.recovery.active_offsets[other] = 3
    skip_trailing_markers(r.app, {r.tp: 5, other: 9}.get)
    assert r.recovery.active_offsets == {r.tp: 4, other: 3} and r.recovery.in_recovery
    skip_trailing_markers(r.app, {r.tp: 5, other: 10}.get)
    assert r.recovery.active_offsets == {r.tp: 4, other: 9} and not r.recovery.in_recovery
