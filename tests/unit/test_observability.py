"""Log lines (crosspost.observability): one event per line, stable event names with
key=value fields, journald priority prefixes under systemd, -v/-q, never a secret;
and the observers the Prometheus exporter counts with, whatever the level."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from crosspost.observability import EventLogger, add_observer, register_secret, setup_logging


@pytest.fixture
def capture(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    def start(verbosity: int = 0, *, journal: bool = False) -> io.StringIO:
        if journal:
            monkeypatch.setenv("JOURNAL_STREAM", "8:4711")
        else:
            monkeypatch.delenv("JOURNAL_STREAM", raising=False)
        stream = io.StringIO()
        setup_logging(verbosity, stream)
        return stream

    yield start
    logging.getLogger("crosspost").handlers.clear()


def test_one_line_per_event_with_key_value_fields(capture: Any) -> None:
    stream = capture()
    EventLogger("crosspost.publisher").error(
        "failed",
        delivery=12,
        post=4,
        account="mastodon",
        attempt=2,
        http_status=422,
        error='Validation "failed"\nsecond line',
        remote_url=None,
    )
    [line] = stream.getvalue().splitlines()
    assert line.endswith(
        "error failed delivery=12 post=4 account=mastodon attempt=2 http_status=422 "
        'error="Validation \\"failed\\"\\nsecond line"'
    )
    assert "remote_url" not in line  # None fields are left out


def test_journald_priority_prefixes(capture: Any) -> None:
    stream = capture(1, journal=True)
    log = EventLogger("crosspost.daemon")
    log.debug("claimed", delivery=1)
    log.info("published", delivery=1)
    log.warning("reaped", deliveries=2)
    log.error("failed", delivery=3)
    assert stream.getvalue().splitlines() == [
        "<7>claimed delivery=1",
        "<6>published delivery=1",
        "<4>reaped deliveries=2",
        "<3>failed delivery=3",
    ]


@pytest.mark.parametrize(
    ("verbosity", "shown"),
    [(-1, ["reaped", "failed"]), (0, ["published", "reaped", "failed"]), (1, None)],
)
def test_quiet_and_verbose(capture: Any, verbosity: int, shown: list[str] | None) -> None:
    stream = capture(verbosity, journal=True)
    log = EventLogger("crosspost.daemon")
    log.debug("claimed")
    log.info("published")
    log.warning("reaped")
    log.error("failed")
    events = [line[3:] for line in stream.getvalue().splitlines()]
    assert events == (shown or ["claimed", "published", "reaped", "failed"])


def test_a_registered_secret_never_reaches_a_line(capture: Any) -> None:
    stream = capture()
    register_secret("s3cr3t-token-value")
    EventLogger().error("attempt_failed", error="401 for token s3cr3t-token-value")
    assert "s3cr3t-token-value" not in stream.getvalue()
    assert "***" in stream.getvalue()


def test_observers_see_every_event_whatever_the_level(capture: Any) -> None:
    capture(-1)
    seen: list[tuple[str, dict[str, Any]]] = []
    remove = add_observer(lambda event, fields: seen.append((event, dict(fields))))
    try:
        EventLogger().debug("attempt_done", account="mastodon", ms=12)
    finally:
        remove()
    EventLogger().debug("after_removal")
    assert seen == [("attempt_done", {"account": "mastodon", "ms": 12})]


def test_values_with_any_whitespace_are_quoted(capture: Any) -> None:
    """Any Unicode whitespace (a no-break space too), quotes and "=" put a value in quotes;
    an empty value is written as ""."""
    stream = capture(journal=True)
    EventLogger().info(
        "published",
        plain="a-b.c/d:1",
        nbsp="Städte\u00a0dreieck",
        tab="a\tb",
        equals="a=b",
        empty="",
    )
    assert stream.getvalue().splitlines() == [
        '<6>published plain=a-b.c/d:1 nbsp="Städte\u00a0dreieck" tab="a\tb" equals="a=b" empty=""'
    ]


@pytest.mark.parametrize("verbosity", [0, 1])
def test_a_traceback_follows_an_error_only_with_verbose(capture: Any, verbosity: int) -> None:
    """exc_info (an exception, or True inside an except block) adds the scrubbed traceback
    under -v; without -v the line stays one line."""
    stream = capture(verbosity, journal=True)
    register_secret("tb-secret-4711")
    log = EventLogger("crosspost.daemon")
    try:
        raise ValueError("boom tb-secret-4711")
    except ValueError as exc:
        log.error("publish_crashed", delivery=7, exc_info=exc)
        log.error("alerts_failed", exc_info=True)
    text = stream.getvalue()
    assert "tb-secret-4711" not in text
    lines = text.splitlines()
    if verbosity == 0:
        assert lines == ["<3>publish_crashed delivery=7", "<3>alerts_failed"]
    else:
        assert lines[0] == "<3>publish_crashed delivery=7"
        assert "Traceback (most recent call last):" in text
        assert text.count("ValueError: boom ***") == 2
