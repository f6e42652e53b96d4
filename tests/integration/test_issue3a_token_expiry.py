"""Issue 3 (X): token expiry is warned about in ``status`` and ``accounts check`` days
before it happens — and only then: a refreshing X account's two-hour access token renews
itself and is no reason to warn.

The installed ``crosspost`` command runs in a subprocess against the X fake (which
validates every request against ``x-openapi.json``) on a real SQLite queue.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from tests.fakes.x import DEFAULT_REFRESH, XFake
from tests.tokenexpiry import Install, new_install

TOKEN_ENV = "CROSSPOST_TEST_X_TOKEN"


def configure(
    install: Install, fake: XFake, *, refresh: bool, expires_in: timedelta | None
) -> None:
    account = [
        "[accounts.x]",
        'platform = "x"',
        f'base_url = "{fake.url}"',
        f'token_env = "{TOKEN_ENV}"',
    ]
    if refresh:
        token_file = install.root / "x-refresh-token"
        token_file.write_text(DEFAULT_REFRESH + "\n", encoding="utf-8")
        token_file.chmod(0o600)
        account += [f'refresh_token_file = "{token_file}"', f'client_id = "{fake.client_id}"']
    if expires_in is not None:
        when = datetime.now(UTC).replace(microsecond=0) + expires_in
        account.append(f"token_expires_at = {when.isoformat().replace('+00:00', 'Z')}")
    install.configure_account(account, TOKEN_ENV, fake.token)


@pytest.fixture
def install(tmp_path: Path) -> Install:
    return new_install(tmp_path)


def test_a_refreshing_x_account_is_not_warned_about_its_two_hour_access_token(
    x_fake: XFake, install: Install
) -> None:
    """The access token is expired and renewed during `accounts check` (a refresh, two
    hours on): neither `accounts check` nor `status` (text or --json) calls for renewal."""
    configure(install, x_fake, refresh=True, expires_in=None)
    x_fake.expire_access_tokens()
    entry = install.check("x")
    assert len(x_fake.requests_to("POST /2/oauth2/token")) == 1  # it did refresh
    assert "warning" not in entry
    assert entry["token_expires_at"] is None
    assert install.json("status")["expiring_tokens"] == {}
    assert "renew" not in install.run("status").stdout


def test_a_configured_expiry_within_the_warning_days_is_warned_about_everywhere(
    x_fake: XFake, install: Install
) -> None:
    """token_expires_at 5 days ahead (warning at 14): `accounts check` warns with the date,
    `status` lists the account under expiring_tokens and says to renew it."""
    configure(install, x_fake, refresh=True, expires_in=timedelta(days=5))
    entry = install.check("x")
    # the date in the site's zone (the default, Europe/Berlin), as crosspost shows it
    expires = datetime.now(UTC) + timedelta(days=5)
    day = expires.astimezone(ZoneInfo("Europe/Berlin")).strftime("%Y-%m-%d")
    assert entry["warning"] == f"the token expires {day}: renew it"
    assert list(install.json("status")["expiring_tokens"]) == ["x"]
    assert f"token of x expires {day}" in install.run("status").stdout


def test_an_expiry_beyond_the_warning_days_is_shown_but_not_warned_about(
    x_fake: XFake, install: Install
) -> None:
    """30 days ahead, without refresh: the date is reported, no warning yet."""
    configure(install, x_fake, refresh=False, expires_in=timedelta(days=30))
    entry = install.check("x")
    assert entry["token_expires_at"] is not None
    assert "warning" not in entry
    assert install.json("status")["expiring_tokens"] == {}
