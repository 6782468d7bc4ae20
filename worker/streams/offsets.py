"""Offsets: commits from the agents' own acks, and end offsets that are known under exactly_once.

Faust's `Consumer._new_offset` commits the first run of consecutive numbers in
its list of acked offsets, patched with the gaps it saw while reading. On
Kafka this stalls or crawls:
- after a seek back to the committed offset (each restart), offsets already
  acked are acked again; a duplicate ends the run, so each commit then moved
  one offset per interval (faust #596, robinhood #625). Measured after a
  kill -9: the by-customer topic's committed offsets stayed 400–7,000 behind
  the end while the worker sat idle;
- a transaction marker holds an offset that no message has, and Faust's
  `_add_gap` records the message read after the marker as a gap as well, so
  that message is in the list twice and, under exactly_once, the commit
  crawls after every transaction (measured: hundreds behind after settling).

Here the commit is the end of the run, from the committed offset, of offsets
that are acked (duplicates do not matter) or that Faust saw no message at,
and `_add_gap` records only the offsets never read. A message read and not
acked (in flight, or dropped by Faust) ends the run, so nothing unprocessed is
ever committed over. (An earlier rule, the offset after the highest ack,
relied on Faust dropping events only during rebalances; a CI run where a
worker sat on unprocessed partitions after joining showed that is not safe to
assume, and that rule would have committed over such events.) The one case
that still stops the commit: a transaction marker exactly at the committed
offset, as on the transactions topic the history agent reads under
exactly_once; that partition's history is then replayed (idempotently) after
a restart.

Under exactly_once the sinks commit the offsets of the topics they consume in
their own transactions; Faust must not commit those too, or its commit,
computed a moment earlier, can land after a sink's and move it back.

Under exactly_once Faust takes a changelog's end offset from the consumer's
last stable offset, which is known only after a fetch from that partition:
for a standby partition just assigned it is unknown, Faust reads it as -1,
and its consistency check crashed the worker ("persisted offset ... is higher
than the last offset in that topic (421 > -1)") on the first rebalance that
moved a standby. The end offsets are asked of the broker instead, which
answers with the last stable offset for a read_committed consumer.

Under exactly_once Faust's own transaction manager still commits the history
agent's offsets, and a `ProducerFenced` there crashes the whole worker (seen
once in a 50,000-event scale run, two seconds after a rebalance), and the
fenced producer, left mid-transaction, failed every later commit. A fenced
commit is now logged and skipped and its producers dropped; the partitions'
owners after the next rebalance commit them.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import ClassVar, cast

from aiokafka.errors import IllegalOperation, ProducerFenced
from faust.transport.consumer import TransactionManager
from faust.transport.drivers import aiokafka as driver
from faust.types import TP

log = logging.getLogger(__name__)


def next_commit(committed: int | None, acked: Iterable[int], gaps: Iterable[tuple[int, int]]) -> int | None:
    """The offset to commit after `committed`, or None when it cannot move.

    `acked` holds offsets of handled messages (duplicates allowed); `gaps` are [begin, end) spans of
    offsets that hold no message. With nothing committed yet, the run starts at the lowest acked offset.
    """
    done = set(acked)
    if not done:
        return None
    spans = sorted(gaps)
    position = min(done) if committed is None else committed
    i = 0
    while True:
        if position in done:
            position += 1
            continue
        while i < len(spans) and spans[i][1] <= position:
            i += 1
        if i < len(spans) and spans[i][0] <= position:
            position = spans[i][1]
            continue
        break
    return position if committed is None or position > committed else None


class EndOffsetsConsumerThread(driver.AIOKafkaConsumerThread):
    """Faust's consumer thread, asking the broker for end offsets in both isolation levels."""

    async def _highwaters(self, partitions: list[TP]) -> Mapping[TP, int]:
        consumer = self._ensure_consumer()
        return cast(Mapping[TP, int], await consumer.end_offsets(partitions))


class AckedCommitConsumer(driver.Consumer):
    """Faust's aiokafka consumer, committing with `next_commit` and recording only offsets never read as gaps."""

    committed_elsewhere: frozenset[str] = frozenset()
    """Topics whose offsets are committed in the sinks' transactions, not by Faust."""

    def _new_offset(self, tp: TP) -> int | None:
        acked = self._acked[tp]
        gaps = self._gap[tp]
        if tp.topic in self.committed_elsewhere:
            acked.clear()
            self._acked_index[tp].clear()
            gaps.clear()
            return None
        offset = next_commit(self._committed_offset[tp], acked, ((g.begin, g.end) for g in gaps))
        if offset is not None:
            self._acked[tp] = [o for o in acked if o >= offset]
            self._acked_index[tp].difference_update([o for o in acked if o < offset])
            gaps.chop(0, offset)
        return offset

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        # Faust passes the offset of the message it has just read as `offset_to`, inclusive
        await super()._add_gap(tp, offset_from, offset_to - 1)

    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return EndOffsetsConsumerThread(self, loop=self.loop, beacon=self.beacon)


class FenceTolerantTransactionManager(TransactionManager):
    """Faust's transaction manager, skipping a fenced commit instead of crashing the worker."""

    async def commit(self, offsets: Mapping[TP, int], start_new_transaction: bool = True) -> bool:
        """Commit each partition group's offsets in its transaction, as Faust does, unless fenced."""
        group_id = self.app.conf.id
        by_transactional_id: defaultdict[str, dict[TP, int]] = defaultdict(dict)
        for tp, offset in offsets.items():
            group = self.app.assignor.group_for_topic(tp.topic)
            by_transactional_id[f"{group_id}-{group}-{tp.partition}"][tp] = offset
        if not by_transactional_id:
            return True
        try:
            await self.producer.commit_transactions(
                by_transactional_id, group_id, start_new_transaction=start_new_transaction
            )
        except (ProducerFenced, IllegalOperation) as exc:
            # the fenced producer is left mid-transaction, so later commits through it would fail too:
            # drop it; Faust starts a new one for each partition assigned at the next rebalance
            log.warning("offsets %s not committed (%s); dropping those producers", dict(offsets), type(exc).__name__)
            for transactional_id in by_transactional_id:
                await self.producer.stop_transaction(transactional_id)
            return False
        return True


class LedgerTransport(driver.Transport):
    """The aiokafka transport with `AckedCommitConsumer` and `FenceTolerantTransactionManager`."""

    Consumer: ClassVar[type[driver.Consumer]] = AckedCommitConsumer
    TransactionManager: ClassVar[type[TransactionManager]] = FenceTolerantTransactionManager
