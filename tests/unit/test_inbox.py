"""The inbox: whole fetches per batch, tracked while handled, acked when done; stale fetches dropped unacked."""

from faust.types import TP, Message

from worker.app import LedgerApp, create_app
from worker.settings import Settings
from worker.streams.inbox import Inbox

TP0, TP1 = TP("inputs", 0), TP("inputs", 1)


def message(tp: TP, offset: int, generation: int) -> Message:
    return Message(tp.topic, tp.partition, offset, 0.0, 0, [], b"k", b"v", None, tp=tp, generation_id=generation)


def inbox() -> tuple[LedgerApp, Inbox]:
    """The app's first inbox, with flow resumed as after an assignment."""
    app = create_app(Settings(kafka_bootstrap_servers="127.0.0.1:1"))
    app.flow_control.resume()
    return app, app.inboxes[0]


async def test_a_batch_takes_every_queued_fetch_and_is_acked_when_done() -> None:
    app, box = inbox()
    app.topics._acking_topics.add(TP0.topic)  # as Faust's conductor does for a topic it subscribed to
    generation = app.consumer_generation_id
    first = [message(TP0, 0, generation), message(TP0, 1, generation)]
    second = [message(TP1, 5, generation)]
    await box.put(first)
    await box.put(second)
    batches = box.batches(batch_max=100)
    batch = await anext(batches)
    assert batch == first + second
    assert all(m.time_in is not None for m in batch)
    assert set(app.consumer.unacked) == {first[-1], second[0]}, "its last of each partition stands for it"
    await box.put([message(TP0, 2, generation)])
    later = await anext(batches)
    assert not any(m.acked for m in batch + later), "acked before the reader said its batch is done"
    box.done(batch)
    assert first[-1].acked and second[0].acked
    assert set(app.consumer.unacked) == {later[0]}, "a rebalance now waits only for the later batch"
    assert [m.offset for m in later] == [2] and not later[0].acked
    assert box.sensor.handled_offsets == {TP0: 2, TP1: 6}
    assert (app.consumer._new_offset(TP0), app.consumer._new_offset(TP1)) == (2, 6), "commits after the batch"


async def test_a_batch_stops_growing_at_batch_max_but_keeps_fetches_whole() -> None:
    app, box = inbox()
    generation = app.consumer_generation_id
    for offset in range(0, 6, 2):
        await box.put([message(TP0, offset, generation), message(TP0, offset + 1, generation)])
    batches = box.batches(batch_max=3)
    assert [m.offset for m in await anext(batches)] == [0, 1, 2, 3]
    assert [m.offset for m in await anext(batches)] == [4, 5]


async def test_fetches_of_an_older_generation_or_during_a_suspension_are_dropped_unacked() -> None:
    app, box = inbox()
    generation = app.consumer_generation_id
    stale = [message(TP0, 0, generation - 1)]
    await box.put(stale)
    await box.put([message(TP0, 0, generation)])
    batches = box.batches(batch_max=100)
    assert [m.generation_id for m in await anext(batches)] == [generation]
    assert not stale[0].acked and stale[0] not in set(app.consumer.unacked)

    app.flow_control.suspend()
    during = [message(TP0, 1, generation)]
    box.queue.force_put_nowait(during)  # fetched just before the suspension
    app.flow_control.resume()  # a real suspension: the queue is cleared
    assert box.queue.empty()


async def test_the_inbox_has_room_below_its_limit_in_messages_and_after_a_clear() -> None:
    app, box = inbox()
    generation = app.consumer_generation_id
    box.queue.limit = 3
    await box.put([message(TP0, 0, generation), message(TP0, 1, generation)])
    assert box.queue.room.is_set()
    await box.put([message(TP1, 0, generation)] * 2)  # one list may take it over the limit
    assert not box.queue.room.is_set() and box.queue.messages == 4
    box.queue.get_nowait()
    assert box.queue.room.is_set() and box.queue.messages == 2
    await box.put([message(TP0, 2, generation)])
    box.queue.clear()
    assert box.queue.room.is_set() and box.queue.messages == 0
