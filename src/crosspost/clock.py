"""The one clock: everything time-related asks it, so tests can move time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

TYPE_CHECKING = False  # importing typing costs; mypy knows the name
if TYPE_CHECKING:
    from typing import Protocol

    class Clock(Protocol):
        def now(self) -> datetime:
            """The current instant, timezone-aware in UTC."""
            ...


def __getattr__(name: str) -> object:
    """``Clock``, the protocol every clock follows, made when first imported (PEP 562):
    ``enqueue --dry-run`` needs only :data:`system_clock`, and a Protocol class is slow
    to create."""
    if name == "Clock":
        from typing import Protocol

        class Clock(Protocol):
            def now(self) -> datetime:
                """The current instant, timezone-aware in UTC."""
                ...

        Clock.__qualname__ = "Clock"
        globals()["Clock"] = Clock
        return Clock
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that only moves when told to (unit tests)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta


system_clock = SystemClock()
