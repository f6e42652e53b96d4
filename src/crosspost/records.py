"""The records a post is made of: :class:`Post`, its :class:`Media`, what each account
receives (:class:`Rendered`) -- and :class:`Record`, the base they share.

They behave as ``@dataclass(frozen=True, slots=True)`` classes do -- keyword or
positional construction in field order, defaults, equality and hashing by
fields, a ``Post(title=…, …)`` repr, no assignment after construction -- and
``record.replace(field=value)`` stands for :func:`dataclasses.replace`. They are
written out instead of generated because ``enqueue --dry-run`` must start nearly
as fast as Python itself, and the ``dataclasses`` module (with ``inspect``,
``ast``, ``dis`` and ``tokenize``) plus generating ten classes cost more than a
third of that. :mod:`crosspost.models` re-exports them beside the store's records.
"""

from __future__ import annotations

TYPE_CHECKING = False  # importing typing costs; mypy knows the name
if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path
    from typing import Any, ClassVar, Self


class FrozenRecordError(AttributeError):
    """Assignment to a field of a record (records are frozen, like frozen dataclasses)."""


class Record:
    """Frozen, slotted, compared and hashed by the fields named in ``_fields``."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple([getattr(self, name) for name in self._fields])

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            assert isinstance(other, Record)
            return self._values() == other._values()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__qualname__}({shown})"

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenRecordError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenRecordError(f"cannot delete field {name!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), self._values())  # copy and pickle rebuild through __init__

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` (what :func:`dataclasses.replace` does for a dataclass)."""
        values = {name: getattr(self, name) for name in self._fields}
        unknown = set(changes) - set(values)
        if unknown:
            raise TypeError(f"{type(self).__qualname__} has no field {sorted(unknown)[0]!r}")
        values.update(changes)
        return type(self)(**values)


_set = object.__setattr__


class Media(Record):
    """An image attached to a post; ``path`` is absolute once validated."""

    _fields = ("path", "alt", "mime")  # in order: the constructor's positions
    __slots__ = _fields

    path: Path
    alt: str
    mime: str

    def __init__(self, path: Path, alt: str, mime: str = "image/jpeg") -> None:
        _set(self, "path", path)
        _set(self, "alt", alt)
        _set(self, "mime", mime)


class Post(Record):
    """What an editor wrote, validated (one per post file or ``enqueue --text``)."""

    _fields = (
        "title",
        "body",
        "link",
        "category",
        "publish_at",
        "accounts",
        "media",
        "variants",
        "source",
        "ambiguous_time",
        "repeat",
    )
    __slots__ = _fields

    title: str
    body: str
    link: str
    category: str | None
    #: aware UTC; None = as soon as possible
    publish_at: datetime | None
    #: explicit target accounts; empty = routing / all enabled
    accounts: tuple[str, ...]
    media: tuple[Media, ...]
    #: account or platform -> text
    variants: dict[str, str]
    #: the post file, if any
    source: str | None
    #: publish_at fell in a repeated (autumn) wall-clock hour
    ambiguous_time: bool
    #: RFC 5545 RRULE of a recurring post (crosspost.recurrence)
    repeat: str | None

    def __init__(
        self,
        title: str,
        body: str,
        link: str,
        category: str | None,
        publish_at: datetime | None,
        accounts: tuple[str, ...],
        media: tuple[Media, ...] = (),
        variants: dict[str, str] | None = None,
        source: str | None = None,
        ambiguous_time: bool = False,
        repeat: str | None = None,
    ) -> None:
        _set(self, "title", title)
        _set(self, "body", body)
        _set(self, "link", link)
        _set(self, "category", category)
        _set(self, "publish_at", publish_at)
        _set(self, "accounts", accounts)
        _set(self, "media", media)
        _set(self, "variants", {} if variants is None else variants)
        _set(self, "source", source)
        _set(self, "ambiguous_time", ambiguous_time)
        _set(self, "repeat", repeat)


class Rendered(Record):
    """The exact text one account will receive, with its counted length."""

    _fields = ("account", "platform", "text", "length", "limit", "unit")
    __slots__ = _fields

    account: str
    platform: str
    text: str
    length: int
    limit: int
    unit: str

    def __init__(
        self, account: str, platform: str, text: str, length: int, limit: int, unit: str
    ) -> None:
        _set(self, "account", account)
        _set(self, "platform", platform)
        _set(self, "text", text)
        _set(self, "length", length)
        _set(self, "limit", limit)
        _set(self, "unit", unit)
