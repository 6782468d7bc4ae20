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

Every agent here acks its events in offset order per partition
(`acked_batches`), and Faust drops events without an ack only while a
rebalance is in progress, after which it forgets the acks and seeks back to
the committed offset. So the offset after the highest ack is safe to commit:
everything below it was handled or holds no message.

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
from collections.abc import Mapping
from typing import ClassVar, cast

from aiokafka.errors import IllegalOperation, ProducerFenced
from faust.transport.consumer import TransactionManager
from faust.transport.drivers import aiokafka as driver
from faust.types import TP

log = logging.getLogger(__name__)


def next_commit(committed: int | None, acked: list[int]) -> int | None:
    """The offset to commit after `committed` given the acked offsets, or None when it cannot move."""
    if not acked:
        return None
    offset = max(acked) + 1
    return offset if committed is None or offset > committed else None


class EndOffsetsConsumerThread(driver.AIOKafkaConsumerThread):
    """Faust's consumer thread, asking the broker for end offsets in both isolation levels."""

    async def _highwaters(self, partitions: list[TP]) -> Mapping[TP, int]:
        consumer = self._ensure_consumer()
        return cast(Mapping[TP, int], await consumer.end_offsets(partitions))


class AckedCommitConsumer(driver.Consumer):
    """Faust's aiokafka consumer, committing the offset after the highest ack (see the module)."""

    committed_elsewhere: frozenset[str] = frozenset()
    """Topics whose offsets are committed in the sinks' transactions, not by Faust."""

    def _new_offset(self, tp: TP) -> int | None:
        acked = self._acked[tp]
        offset = None if tp.topic in self.committed_elsewhere else next_commit(self._committed_offset[tp], acked)
        acked.clear()
        self._acked_index[tp].clear()
        self._gap[tp].clear()
        return offset

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
