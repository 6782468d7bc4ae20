"""Recovery of the tables: an active changelog partition's fetch applied to its store at once.

Faust's recovery (`Recovery._slurp_changelogs`) takes changelog records one by
one: each is delivered to a queue, taken back out in a task, formatted into
two debug messages, buffered, and followed by a check over every partition of
whether recovery is done. That was about 30 µs a record, and with the
in-memory store every rebalance and restart reads every changelog whole.

`restore` does what that loop does for an active partition's fetch in one
step: it skips the records at or below the partition's offset seen so far,
applies the rest to the table's store with the table's own
`apply_changelog_batch`, moves the offset seen to the last one, and ends the
recovery, as Faust would, once no partition has records left. Between fetches
`skip_trailing_markers` counts a partition read past its highwater as
recovered, which Faust's loop tests only once its wait for a record has timed
out twice. Standby
partitions, and any fetch while records handed to Faust's loop are still in
it, go Faust's way: the records of a partition are then applied in order by
one of the two, never by both.

Faust's recovery waits for its end signal once it has begun reading; its own
loop sets the signal and clears it again at once, but `restore` cannot know
whether Faust waits yet, so it leaves the signal set. `clear_end_on_rebalance`
clears it as the next rebalance starts: left set, it ended that rebalance's
recovery before a record was read, and a worker that took over partitions then
applied their events to empty states.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, cast

from faust.types import TP, AppT, Message


class Change(NamedTuple):
    """A changelog record as a store applies it: what Faust's stores read of a changelog event."""

    key: Any
    value: Any
    message: Message


def restore(app: AppT, messages: Sequence[Message], handed: Mapping[TP, int]) -> bool:
    """Apply one changelog partition's fetched records (in offset order) to its table, if Faust's recovery is
    reading it as an active partition; False when they must go Faust's way.

    `handed` is the offset of the last record of each partition given to Faust's loop: until the loop has
    taken it, this partition's records go the same way, after it.
    """
    recovery = _reading(app)
    tp = messages[0].tp
    if recovery is None or tp not in recovery.active_tps:
        return False
    seen: int | None = recovery.active_offsets.get(tp)
    last_handed = handed.get(tp)
    if last_handed is not None and (seen is None or seen < last_handed):
        return False
    fresh = [message for message in messages if seen is None or message.offset > seen]
    if fresh:
        recovery.flush_buffers()  # what Faust's loop buffered is older: it goes first
        recovery.tp_to_table[tp].apply_changelog_batch([Change(m.key, m.value, m) for m in fresh])
        recovery.active_offsets[tp] = fresh[-1].offset
    _end_if_done(recovery)
    return True


def skip_trailing_markers(app: AppT, position: Callable[[TP], int | None]) -> None:
    """Count an active changelog partition as recovered once the consumer has read past its highwater, if what
    it has read is applied: what is left below the highwater is transaction markers and aborted records.

    Under exactly_once every changelog record is written in a transaction, so a partition ends with a
    transaction marker, and the offset of its last record stays below the highwater. Faust's loop makes the
    same test of the position (`detect_aborted_tx`) only when its wait for a record has timed out (5 s) twice
    in a row: the chaos suite's `eos-churn` recovered in about 12 s, against 3–5 s with this test. Called by
    the fetch loop between fetches, when every record fetched so far is applied (by `restore`) or is Faust's
    loop's; not while records wait in its queue, which it would then skip as seen.
    """
    recovery = _reading(app)
    if recovery is None:
        return
    for tp in recovery.active_tps:
        highwater = recovery.active_highwaters.get(tp)
        seen = recovery.active_offsets.get(tp)
        if highwater is None or (seen is not None and seen >= highwater):
            continue
        read_to = position(tp)
        if read_to is not None and read_to > highwater:
            recovery.active_offsets[tp] = highwater
    _end_if_done(recovery)


def _reading(app: AppT) -> Any:
    """Faust's recovery, while it reads the changelogs with none of their records waiting in its loop's queue
    (they go first); else None."""
    tables: Any = app.tables
    recovery = tables.recovery
    return recovery if recovery.in_recovery and tables.changelog_queue.empty() else None


def _end_if_done(recovery: Any) -> None:
    """End the recovery once no active partition has records left, as Faust's loop ends it
    (`_maybe_signal_recovery_end`)."""
    if not recovery.need_recovery():
        recovery.flush_buffers()
        recovery._set_recovery_ended()
        recovery.signal_recovery_end.set()


def clear_end_on_rebalance(app: AppT) -> None:
    """Clear the recovery's end signal as each rebalance starts (on the revocation that begins it).

    Found by the chaos suite's `scale` scenario once its stream flowed during the faults: a worker that got
    four more partitions within a second of an earlier recovery that `restore` ended declared the new one
    complete in the same millisecond, without reading their changelogs, and applied their events from empty
    states (lost, wrong and conflicting transactions). Faust's own loop clears the signal only at its next
    record or after 5 s without one.
    """

    async def clear(sender: object, *args: Any, **kwargs: Any) -> None:
        cast(Any, app.tables).recovery.signal_recovery_end.clear()

    app.on_partitions_revoked.connect(cast(Any, clear))
