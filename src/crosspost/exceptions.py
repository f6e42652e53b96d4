"""Every error crosspost raises on purpose.

::

    CrosspostError                 exit 1: the operation failed
    ├── InputError                 exit 2: bad input or usage; nothing was written
    │   ├── ConfigError            the configuration file or environment is wrong
    │   ├── PostFileError          a post file cannot be read or is malformed
    │   ├── PostRejected           a post does not fit an account (length, link, alt text)
    │   ├── NotFound               no such post, delivery or account
    │   └── SchemaOutdated         the database schema is older (or newer) than this version
    ├── Refused                    not allowed in the post's state (four eyes, published, …)
    ├── StoreError                 the database failed
    └── PlatformError              a platform call failed (adapters raise only these)
        ├── AuthError              credentials refused: pause the account
        ├── RateLimited            too many requests: wait until ``until``
        ├── Rejected               refused for good for this post (validation, duplicate, policy)
        ├── Transient              not processed (5xx, refused, timeout before sending): retry
        └── UnknownOutcome         may have landed (timeout or reset after sending)

Each class's docstring is its default message. Messages are translated by the
raiser (``crosspost.i18n._``) and never contain a secret.
"""

from __future__ import annotations

from datetime import datetime


class CrosspostError(Exception):
    """The operation failed."""

    exit_code = 1

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (self.__doc__ or "").strip()
        super().__init__(self.message)


class InputError(CrosspostError):
    """The input is not valid."""

    exit_code = 2


class ConfigError(InputError):
    """The configuration is not valid."""


class PostFileError(InputError):
    """The post file is not valid."""


class PostRejected(InputError):
    """The post cannot be published as written."""


class NotFound(InputError):
    """Not found."""


class SchemaOutdated(InputError):
    """The database schema does not match this version of crosspost."""


class Refused(CrosspostError):
    """The operation is not allowed for this post now."""


class StoreError(CrosspostError):
    """The database failed."""


class PlatformError(CrosspostError):
    """The platform call failed."""

    def __init__(
        self,
        message: str | None = None,
        *,
        http_status: int | None = None,
        sent: bool = True,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        #: whether the request may have reached the platform
        self.sent = sent


class AuthError(PlatformError):
    """The platform refused the account's credentials."""


class RateLimited(PlatformError):
    """The platform asks us to slow down."""

    def __init__(
        self,
        message: str | None = None,
        *,
        until: datetime | None = None,
        http_status: int | None = 429,
    ) -> None:
        super().__init__(message, http_status=http_status, sent=False)
        #: the earliest instant (aware, UTC) at which the next request may go out
        self.until = until


class Rejected(PlatformError):
    """The platform refused this post."""


class Transient(PlatformError):
    """The platform could not process the request; it is safe to try again."""

    def __init__(self, message: str | None = None, *, http_status: int | None = None) -> None:
        super().__init__(message, http_status=http_status, sent=False)


class UnknownOutcome(PlatformError):
    """The request may have reached the platform, but its answer was lost."""

    def __init__(
        self,
        message: str | None = None,
        *,
        http_status: int | None = None,
        still_in_flight: bool = False,
    ) -> None:
        super().__init__(message, http_status=http_status)
        #: the platform did not answer in time and may still be working on the request:
        #: a post it creates later is not found by a lookup made now
        self.still_in_flight = still_in_flight
