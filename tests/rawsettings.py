"""Settings from plain configuration tables, as :func:`crosspost.config.load_settings` builds
them from the TOML file.

``Settings(site={...}, accounts={"m": {...}})`` is what the tests mean: pydantic validates
the plain dicts, lists and strings into the section models. Its constructor is typed with
the section models, though, so mypy rejects the dicts; :func:`settings_from` takes the
tables as ``Any`` (as ``load_settings`` passes the parsed TOML) and keeps the same path
through ``Settings.__init__`` (environment overrides included), unlike ``model_validate``.
"""

from __future__ import annotations

from typing import Any

from crosspost.config import Settings


def settings_from(**tables: Any) -> Settings:
    """``Settings(**tables)``: ``tables`` are the configuration's sections as plain values."""
    return Settings(**tables)
