"""The flow-control patch: events already queued for a stream survive a resume while flow is active."""

from mode.utils.queues import FlowControlEvent, ThrowableQueue

from worker.app import create_app
from worker.settings import Settings
from worker.streams.flow_control import KeepQueuedOnResume


async def test_resume_while_active_keeps_queued_events() -> None:
    flow = KeepQueuedOnResume()
    flow.resume()
    queue: ThrowableQueue[int] = ThrowableQueue(flow_control=flow, clear_on_resume=True)
    queue.put_nowait(1)
    queue.put_nowait(2)
    flow.resume()  # what Faust does once more at the end of table recovery
    assert queue.qsize() == 2


async def test_stock_flow_control_drops_them() -> None:
    """The behaviour being patched: mode clears the queues on every resume."""
    flow = FlowControlEvent()
    flow.resume()
    queue: ThrowableQueue[int] = ThrowableQueue(flow_control=flow, clear_on_resume=True)
    queue.put_nowait(1)
    flow.resume()
    assert queue.qsize() == 0


async def test_resume_after_a_suspension_still_clears() -> None:
    flow = KeepQueuedOnResume()
    queue: ThrowableQueue[int] = ThrowableQueue(flow_control=flow, clear_on_resume=True)
    queue.put_nowait(1)
    flow.suspend()
    flow.resume()
    assert queue.qsize() == 0 and flow.is_active()


def test_the_app_uses_the_patched_flow_control() -> None:
    app = create_app(Settings())
    assert isinstance(app.flow_control, KeepQueuedOnResume)
