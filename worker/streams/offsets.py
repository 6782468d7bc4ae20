"""Offsets: commits from the readers' own acks, and end offsets that are known under exactly_once.

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

Every reader here acks its messages in offset order per partition
(`Inbox.batches`), and Faust drops events without an ack only while a
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
"""

from collections.abc import Mapping
from typing import cast

from faust.transport.drivers import aiokafka as driver
from faust.types import TP


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
