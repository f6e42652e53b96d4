"""Found by the storage suite: a daemon stopping on a failed database cancels the
scheduler's jobs, and APScheduler logged the cancellation of one not yet started
("Error running job watch" with a CancelledError traceback) through Python's bare
fallback handler: a traceback in the daemon's output. Its loggers now go through
crosspost's own one-line handler, without the cancellations."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator

import pytest

from crosspost.observability import setup_logging

LOGGERS = ("crosspost", "apscheduler", "httpx", "httpcore", "alembic")


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    saved = {
        name: (list(logger.handlers), logger.propagate, logger.level)
        for name in LOGGERS
        for logger in [logging.getLogger(name)]
    }
    stream = io.StringIO()
    setup_logging(0, stream)
    yield stream
    for name, (handlers, propagate, level) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.propagate = propagate
        logger.setLevel(level)


def fail_with(error: BaseException) -> None:
    try:
        raise error
    except BaseException:
        logging.getLogger("apscheduler.executors.default").error(
            "Error running job %s", type(error).__name__, exc_info=True
        )


def test_a_job_cancelled_at_shutdown_leaves_no_line(output: io.StringIO) -> None:
    fail_with(asyncio.CancelledError())
    fail_with(ValueError("kaputt"))
    assert output.getvalue().splitlines()[0].endswith("error Error running job ValueError")
    assert "CancelledError" not in output.getvalue()


def test_a_job_that_fails_is_one_line_without_traceback(output: io.StringIO) -> None:
    fail_with(ValueError("kaputt"))
    [line] = output.getvalue().splitlines()
    assert line.endswith("error Error running job ValueError")
    assert "Traceback" not in output.getvalue()
