"""Where an input message came from, carried through the by-customer topic in a header."""

import orjson
from faust.types import Message

from worker.core.immutable import immutable
from worker.models.dead_letter import DeadLetterSource, encode_bytes

SOURCE_HEADER = "balance-source"


@immutable
class Source:
    """The input topic, partition, offset, key and timestamp (ms) of a message."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    timestamp_ms: int | None

    @classmethod
    def of(cls, msg: Message) -> "Source":
        """The source of an input message; a forwarded one carries it in its header."""
        header = dict(msg.headers or ()).get(SOURCE_HEADER)
        if header is not None:
            topic, partition, offset, key, timestamp = orjson.loads(header)
            return cls(topic, partition, offset, None if key is None else bytes.fromhex(key), timestamp)
        timestamp = None if msg.timestamp is None else int(msg.timestamp * 1000)
        return cls(msg.topic, msg.partition, msg.offset, msg.key, timestamp)

    def header(self) -> dict[str, bytes]:
        """The header that carries this source along a forwarded message."""
        key = None if self.key is None else self.key.hex()
        return {SOURCE_HEADER: orjson.dumps([self.topic, self.partition, self.offset, key, self.timestamp_ms])}

    def dead_letter_source(self) -> DeadLetterSource:
        """The `source` block of a dead letter."""
        key = None if self.key is None else encode_bytes(self.key)[0]
        return DeadLetterSource(
            topic=self.topic, partition=self.partition, offset=self.offset, key=key, timestamp=self.timestamp_ms
        )
