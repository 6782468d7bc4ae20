"""`BALANCE_DEBUG_LOGGERS`: the loggers named log at debug under a worker logging at info, and no other does."""

import io
import logging
from collections.abc import Iterator

import pytest
from mode.utils.logging import setup_logging

from worker.app import log_at_debug


@pytest.fixture
def worker_logging() -> Iterator[io.StringIO]:
    """Logging as the worker sets it up at info (mode's), into a buffer; restored after."""
    root = logging.root
    handlers, level = list(root.handlers), root.level
    names = ("worker.streams.sinks", "worker.streams.fetch")
    levels = {name: logging.getLogger(name).level for name in names}
    out = io.StringIO()
    setup_logging(loglevel="info")
    for handler in root.handlers:
        assert isinstance(handler, logging.StreamHandler) and handler.level == logging.INFO
        handler.setStream(out)
    try:
        yield out
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, was in levels.items():
            logging.getLogger(name).setLevel(was)


def test_the_loggers_named_log_at_debug_and_the_others_at_the_worker_s_level(worker_logging: io.StringIO) -> None:
    logging.getLogger("worker.streams.sinks").debug("before: dropped")
    log_at_debug(" worker.streams.sinks,,")
    logging.getLogger("worker.streams.sinks").debug("a transaction's offsets")
    logging.getLogger("worker.streams.fetch").debug("not named: dropped")
    logging.getLogger("worker.streams.fetch").info("info still logged")
    text = worker_logging.getvalue()
    assert "a transaction's offsets" in text and "info still logged" in text
    assert "dropped" not in text


def test_no_logger_named_leaves_the_worker_s_handlers_alone(worker_logging: io.StringIO) -> None:
    levels = [handler.level for handler in logging.root.handlers]
    log_at_debug("")
    assert [handler.level for handler in logging.root.handlers] == levels
