"""``[inbox]`` and ``[privacy]``: offices, reply templates, sync and retention.

::

    [inbox]
    sync_interval = 300            # seconds between two fetches per account (daemon)
    lookback_days = 14             # how far back the first fetch of an account reaches

    [inbox.offices.bauamt]
    name = "Bauamt"
    email = "bauamt@zv-staedtedreieck.de"
    phone = "+49 3491 000-100"

    [inbox.templates.verweis]
    office = "bauamt"              # optional: the office {office}, {email}, {phone} name
    text = "Danke für Ihre Frage! Bitte wenden Sie sich an {office}: {email}, Tel. {phone}."

    [privacy]
    retention_days = 90            # interactions are deleted this long after they are done

A template's placeholders are ``{handle}`` (who wrote), ``{office}``, ``{email}``
and ``{phone}`` (the template's office, or the one given with ``--office``);
literal braces are written ``{{`` and ``}}``. Every fault is reported by
:func:`crosspost.config.load_settings` as one line naming the key (exit 2).
"""

from __future__ import annotations

import string
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from crosspost.i18n import _

#: what a template may use
TEMPLATE_FIELDS = frozenset({"handle", "office", "email", "phone"})
OFFICE_FIELDS = frozenset({"office", "email", "phone"})


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def is_mail_address(value: str) -> bool:
    local, at, domain = value.strip().rpartition("@")
    return bool(at and local and "." in domain and not any(c.isspace() for c in value.strip()))


class OfficeConfig(_Section):
    """A competent office requests are passed on to."""

    #: how the office is named in replies ("Bauamt"); default: the key
    name: str = ""
    email: str
    phone: str = ""

    @field_validator("email")
    @classmethod
    def _address(cls, value: str) -> str:
        if not is_mail_address(value):
            raise ValueError(_("must be a mail address such as bauamt@example.de"))
        return value.strip()


def template_fields(text: str) -> set[str]:
    """The placeholders ``text`` uses; ValueError for a malformed one."""
    used: set[str] = set()
    for _literal, name, spec, conversion in string.Formatter().parse(text):
        if name is None:
            continue
        if name in TEMPLATE_FIELDS and (spec or conversion):
            raise ValueError(
                _("the placeholder {{{name}}} takes no format; write it as {{{name}}}").format(
                    name=name
                )
            )
        if name not in TEMPLATE_FIELDS:
            raise ValueError(
                _(
                    "unknown placeholder {{{name}}}; use {known} (write literal braces as "
                    "{{{{ and }}}})"
                ).format(name=name, known=", ".join(f"{{{f}}}" for f in sorted(TEMPLATE_FIELDS)))
            )
        used.add(name)
    return used


class TemplateConfig(_Section):
    """A reply text editors choose with ``inbox reply ID --template NAME``."""

    text: str
    office: str | None = None

    @field_validator("text")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        if not value.strip():
            raise ValueError(_("must not be empty"))
        try:
            template_fields(value)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        return value


class InboxConfig(_Section):
    #: fetch interactions in the daemon at all
    enabled: bool = True
    #: seconds between two fetches of one account
    sync_interval: float = Field(default=300.0, ge=10, le=86400)
    #: how far back the first fetch of an account reaches (days)
    lookback_days: int = Field(default=14, ge=1, le=365)
    #: published posts whose comments are fetched (platforms that list comments per post)
    watch_days: int = Field(default=30, ge=1, le=365)
    offices: dict[str, OfficeConfig] = Field(default_factory=dict)
    templates: dict[str, TemplateConfig] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _references(self) -> Self:
        for name, template in self.templates.items():
            if template.office is not None and template.office not in self.offices:
                known = ", ".join(sorted(self.offices)) or _("none configured")
                raise ValueError(
                    _("templates.{name}.office: unknown office {office!r}; known: {known}").format(
                        name=name, office=template.office, known=known
                    )
                )
        return self


class PrivacyConfig(_Section):
    #: interactions are deleted this many days after they were done
    retention_days: int = Field(default=90, ge=0, le=3650)
    #: how often the daemon deletes what is due (seconds)
    purge_interval: float = Field(default=3600.0, ge=60, le=86400)
