"""A plain-data copy of the validated configuration, for the start-up cache.

:func:`capture` walks a :class:`~crosspost.config.Settings` (after pydantic has
validated it) and records every field, every class constant (``default_base_url``)
and the value of every property (``site.zone``, ``site.allowed_hosts``) of each
section and account. :func:`restore` turns that record back into objects that
answer the same attribute reads, without importing pydantic: what
``enqueue --dry-run`` reads from the settings it reads from these.

What cannot be copied faithfully is not copied: a secret value (``SecretStr``) or
a type this module does not know makes :func:`capture` return None, and then
nothing is cached. A property that raised is not copied, so reading it fails
(and the caller falls back to the real settings). Methods other than
``Settings.enabled_accounts`` and ``Settings.account`` are not copied either.
"""

from __future__ import annotations

TYPE_CHECKING = False  # importing typing costs; mypy knows the name
if TYPE_CHECKING:
    from typing import Any

    from crosspost.config import Settings

#: what a record of a model looks like: (tag, class name, attributes)
MODEL = "model"
_PATH = "path"
_ZONE = "zone"
_DATETIME = "datetime"
_TUPLE = "tuple"


class Unsupported(Exception):
    """A value the snapshot cannot hold faithfully."""


def capture(settings: Settings) -> Any | None:
    """The settings as marshal-able data, or None if they hold what must not be copied."""
    try:
        return _encode(settings)
    except Unsupported:
        return None


def _encode(value: Any) -> Any:
    from datetime import datetime
    from pathlib import PurePath
    from zoneinfo import ZoneInfo

    from pydantic import BaseModel, SecretBytes, SecretStr

    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, SecretStr | SecretBytes):
        raise Unsupported("a secret")
    if isinstance(value, BaseModel):
        return (MODEL, type(value).__qualname__, _model_attributes(value))
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, tuple):
        return (_TUPLE, [_encode(v) for v in value])
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise Unsupported("a mapping with keys that are not text")
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, frozenset):
        if not all(isinstance(v, str | int) for v in value):
            raise Unsupported("a set of other than text or numbers")
        return frozenset(value)
    if isinstance(value, PurePath):
        if type(value).__name__ not in ("PosixPath", "Path"):
            raise Unsupported(type(value).__name__)
        return (_PATH, str(value))
    if isinstance(value, ZoneInfo):
        if value.key is None:
            raise Unsupported("a time zone without a name")
        return (_ZONE, value.key)
    if isinstance(value, datetime):
        return (_DATETIME, value.isoformat())
    raise Unsupported(type(value).__name__)


def _model_attributes(model: Any) -> dict[str, Any]:
    cls = type(model)
    values: dict[str, Any] = {}
    for name in cls.model_fields:
        values[name] = _encode(getattr(model, name))
    extra = model.model_extra  # the keys of a section that allows any (``[quiet_hours]``)
    values["model_extra"] = None if extra is None else _encode(dict(extra))
    for name, value in (extra or {}).items():
        values[name] = _encode(value)
    for name in getattr(cls, "__class_vars__", ()):
        values[name] = _encode(getattr(cls, name))
    for klass in reversed(cls.__mro__):
        if not klass.__module__.startswith("crosspost."):
            continue
        for name, member in vars(klass).items():
            if isinstance(member, property) and not name.startswith("_"):
                try:
                    result = getattr(model, name)
                except Exception:  # noqa: BLE001 - a property that raises is left out
                    values.pop(name, None)
                    continue
                values[name] = _encode(result)
    return values


class Record:
    """One section or account of the settings: its fields and properties as attributes.

    Paths are made on first read (``enqueue --dry-run`` reads none and starts without
    pathlib): ``lazy`` holds their text until then.
    """

    def __init__(
        self, kind: str, attributes: dict[str, Any], lazy: dict[str, str] | None = None
    ) -> None:
        vars(self).update(attributes)
        vars(self)["_kind"] = kind
        vars(self)["_lazy"] = lazy or {}

    def __getattr__(self, name: str) -> Any:
        # only for names not set: the paths not read yet
        lazy = vars(self)["_lazy"]
        if name not in lazy:
            raise AttributeError(f"{vars(self)['_kind']} has no attribute {name!r}")
        from pathlib import Path

        value = vars(self)[name] = Path(lazy.pop(name))
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{vars(self)['_kind']} is read-only")

    def __repr__(self) -> str:
        return f"<{vars(self)['_kind']} snapshot>"


class SettingsRecord(Record):
    """The top level, with the two methods of ``Settings`` that reading a post uses."""

    def enabled_accounts(self) -> dict[str, Any]:
        accounts: dict[str, Any] = vars(self)["accounts"]
        return {name: acc for name, acc in accounts.items() if acc.enabled}

    def account(self, name: str) -> Any:
        return vars(self)["accounts"][name]


def restore(data: Any) -> Any:
    """Objects with the attributes :func:`capture` recorded."""
    if isinstance(data, list):
        return [restore(v) for v in data]
    if isinstance(data, dict):
        return {k: restore(v) for k, v in data.items()}
    if not isinstance(data, tuple):
        return data
    tag = data[0]
    if tag == MODEL:
        _tag, kind, attributes = data
        record = SettingsRecord if kind == "Settings" else Record
        lazy = {
            k: v[1] for k, v in attributes.items() if isinstance(v, tuple) and v and v[0] == _PATH
        }
        values = {k: restore(v) for k, v in attributes.items() if k not in lazy}
        return record(kind, values, lazy)
    if tag == _PATH:
        from pathlib import Path

        return Path(data[1])
    if tag == _ZONE:
        from zoneinfo import ZoneInfo

        return ZoneInfo(data[1])
    if tag == _DATETIME:
        from datetime import datetime

        return datetime.fromisoformat(data[1])
    if tag == _TUPLE:
        return tuple(restore(v) for v in data[1])
    raise ValueError(f"not a snapshot: {tag!r}")
