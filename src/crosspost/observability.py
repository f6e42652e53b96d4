"""Logs: one event per line, a stable event name and ``key=value`` fields.

``published delivery=12 post=4 account=mastodon attempt=1 http_status=200``

Event names and keys are stable identifiers for grep and log tooling and are
not translated; the values that are prose (errors, the platform's own words)
are. When ``$JOURNAL_STREAM`` is set (running under systemd) each line carries a
``<N>`` syslog priority prefix so the journal files it at the right level.
Secrets never reach a log line: adapters redact them before raising, and
:func:`scrub` removes every configured secret once more as a last guard.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
from collections.abc import Callable
from typing import Any, TextIO

_PRIORITIES = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}
_secrets: set[str] = set()
#: called with every event, whatever the log level (the Prometheus exporter counts them)
Observer = Callable[[str, dict[str, Any]], None]
_observers: list[Observer] = []


def add_observer(observer: Observer) -> Callable[[], None]:
    """Have ``observer(event, fields)`` called for every event; returns its remover.

    Observers run in the caller's thread and must neither block nor raise.
    """
    _observers.append(observer)

    def remove() -> None:
        if observer in _observers:
            _observers.remove(observer)

    return remove


def register_secret(value: str) -> None:
    """Remember a secret so that no log line can ever contain it."""
    if len(value) >= 4:
        _secrets.add(value)


def scrub(text: str) -> str:
    for secret in _secrets:
        text = text.replace(secret, "***")
    return text


#: a value with one of these (any Unicode whitespace, as str.isspace) is written quoted
_NEEDS_QUOTES = re.compile(r'[\s"=]')


def _value(value: Any) -> str:
    text = str(value)
    if text == "" or _NEEDS_QUOTES.search(text):
        escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    return text


class EventFormatter(logging.Formatter):
    def __init__(self, *, journal: bool) -> None:
        super().__init__()
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "fields", {})
        parts = [record.getMessage()]
        parts.extend(f"{k}={_value(v)}" for k, v in fields.items() if v is not None)
        line = scrub(" ".join(parts))
        if record.exc_info and logging.getLogger("crosspost").isEnabledFor(logging.DEBUG):
            line += "\n" + scrub(self.formatException(record.exc_info))
        if self.journal:
            return f"<{_PRIORITIES.get(record.levelno, 6)}>{line}"
        level = record.levelname.lower()
        return f"{self.formatTime(record, '%Y-%m-%dT%H:%M:%S')} {level} {line}"


class EventLogger:
    """``log.info("published", delivery=3, account="mastodon")``."""

    def __init__(self, name: str = "crosspost") -> None:
        self._logger = logging.getLogger(name)

    def _log(self, level: int, event: str, fields: dict[str, Any]) -> None:
        for observer in _observers:
            observer(event, fields)
        logger = self._logger
        if logger.isEnabledFor(level):
            exc = fields.pop("exc_info", None)
            if isinstance(exc, BaseException):  # what Logger.log does with exc_info
                exc = (type(exc), exc, exc.__traceback__)
            elif exc and not isinstance(exc, tuple):
                exc = sys.exc_info()
            # The record made directly, as Logger.log would, without its search of the
            # call stack for a file and line no line of ours shows (a fifth of its cost).
            record = logger.makeRecord(
                logger.name, level, "", 0, event, (), exc, extra={"fields": fields}
            )
            logger.handle(record)

    def debug(self, event: str, **fields: Any) -> None:
        self._log(logging.DEBUG, event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._log(logging.INFO, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._log(logging.WARNING, event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._log(logging.ERROR, event, fields)


def setup_logging(verbosity: int = 0, stream: TextIO | None = None) -> None:
    """-q = warnings only, default = info, -v = debug with cause chains."""
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    if verbosity < -1:
        level = logging.ERROR
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(EventFormatter(journal=bool(os.environ.get("JOURNAL_STREAM"))))
    root = logging.getLogger("crosspost")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    for noisy in ("apscheduler", "httpx", "httpcore", "alembic"):
        # One line each, scrubbed, a traceback only with -v; never Python's bare fallback.
        other = logging.getLogger(noisy)
        other.setLevel(logging.WARNING)
        other.handlers[:] = [handler]
        other.propagate = False
    handler.addFilter(_not_cancelled)


def _not_cancelled(record: logging.LogRecord) -> bool:
    """Drop APScheduler's "Error running job" for a job cancelled at shutdown: stopping
    cancels jobs under way (or not started yet), which is no error."""
    cancelled = bool(record.exc_info) and record.exc_info[0] is asyncio.CancelledError  # type: ignore[index]
    return not (cancelled and record.name.startswith("apscheduler"))
