"""The one HTTP client an adapter keeps to its platform.

Built on first use (:meth:`ClientAdapter.connect`: base URL, headers, rate-limit parser,
the secrets to redact), so that building an adapter sends nothing and needs no secret;
closed with the adapter, after which the next request builds a new one.
"""

from __future__ import annotations

import abc
from typing import Generic, TypeVar

from crosspost.adapters._http import HttpClient
from crosspost.adapters.base import Adapter
from crosspost.exceptions import AuthError

C = TypeVar("C", bound=HttpClient)


class ClientAdapter(Adapter, Generic[C]):
    """An adapter that talks to its platform through one :class:`HttpClient` (``http``)."""

    _http: C | None = None

    @abc.abstractmethod
    def connect(self) -> C:
        """A new client for the account."""

    @property
    def http(self) -> C:
        if self._http is None:
            self._http = self.connect()
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def configured_secret(self, missing: str) -> str:
        """The account's secret; AuthError with the admin's message ``missing`` without one."""
        if self._secret is None:
            raise AuthError(missing)
        return self._secret.get_secret_value()
