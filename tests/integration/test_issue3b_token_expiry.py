"""Issue 3 (Threads, LinkedIn): token expiry is tracked and warned about in ``status``
and ``accounts check`` days before it happens (``daemon.token_expiry_warning_days``,
14 here).

Threads' 60-day token: its expiry is learnt from the platform (``debug_token``) by
``accounts check`` and by the daemon, and the daemon refreshes it once it is within
7 days of its end — so a token 10 days from its end is warned about, not refreshed.
LinkedIn's 60-day token has no refresh: the admin writes ``token_expires_at``.

The installed ``crosspost`` command runs in a subprocess against the fakes on a real
SQLite queue.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from tests.fakes.linkedin import LinkedInFake
from tests.fakes.meta import ThreadsFake
from tests.tokenexpiry import Install, new_install

TOKEN_ENV = "CROSSPOST_TEST_TOKEN"


def configure(install: Install, name: str, account: dict[str, str], token: str) -> None:
    lines = [f"[accounts.{name}]", f'platform = "{name}"', f'token_env = "{TOKEN_ENV}"']
    lines += [f"{k} = {v}" for k, v in account.items()]
    install.configure_account(lines, TOKEN_ENV, token)


@pytest.fixture
def install(tmp_path: Path) -> Install:
    return new_install(tmp_path)


def _day(when: datetime) -> str:
    """The date as crosspost shows it: in the site's zone (the default, Europe/Berlin) --
    between 23:00 and 24:00 UTC that is already the next day."""
    return when.astimezone(ZoneInfo("Europe/Berlin")).strftime("%Y-%m-%d")


def _threads(install: Install, fake: ThreadsFake, *, days_left: int) -> datetime:
    """A Threads account whose token ends in ``days_left`` days; that end."""
    fake.set_token_age(fake.token, timedelta(days=60 - days_left))
    configure(
        install,
        "threads",
        {"base_url": f'"{fake.url}"', "user_id": f'"{fake.user_id}"'},
        fake.token,
    )
    return fake.tokens[fake.token].expires_at


def test_threads_expiry_learnt_by_accounts_check_is_warned_about_everywhere(
    threads_fake: ThreadsFake, install: Install
) -> None:
    """10 days left: `accounts check` asks the platform, reports the date with a warning,
    does not refresh yet; `status` (text and --json) then says to renew it."""
    expires = _threads(install, threads_fake, days_left=10)
    entry = install.check("threads")
    assert entry["warning"] == f"the token expires {_day(expires)}: renew it"
    assert entry["token_expires_at"] is not None
    assert threads_fake.requests_to("GET /refresh_access_token") == []
    assert list(install.json("status")["expiring_tokens"]) == ["threads"]
    assert f"token of threads expires {_day(expires)}" in install.run("status").stdout


def test_threads_expiry_learnt_by_the_daemon_is_warned_about_in_status(
    threads_fake: ThreadsFake, install: Install
) -> None:
    """The daemon learns the expiry at start and stores it: `status` warns without any
    `accounts check`."""
    expires = _threads(install, threads_fake, days_left=10)
    assert install.json("status")["expiring_tokens"] == {}
    assert install.run("daemon", "--once", check=False).returncode == 0
    assert list(install.json("status")["expiring_tokens"]) == ["threads"]
    assert f"token of threads expires {_day(expires)}" in install.run("status").stdout


def test_threads_token_within_a_week_of_its_end_is_refreshed_not_warned_about(
    threads_fake: ThreadsFake, install: Install
) -> None:
    """5 days left: `accounts check` refreshes it (60 days on), so nothing to renew."""
    _threads(install, threads_fake, days_left=5)
    entry = install.check("threads")
    assert len(threads_fake.requests_to("GET /refresh_access_token")) == 1
    assert "warning" not in entry
    assert install.json("status")["expiring_tokens"] == {}


def _linkedin(install: Install, fake: LinkedInFake, *, days_left: int) -> datetime:
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(days=days_left)
    configure(
        install,
        "linkedin",
        {
            "base_url": f'"{fake.url}"',
            "organization": f'"{fake.organization}"',
            "version": '"202501"',
            "token_expires_at": when.isoformat().replace("+00:00", "Z"),
        },
        fake.token,
    )
    return when


def test_linkedin_expiry_within_the_warning_days_is_warned_about_everywhere(
    linkedin_fake: LinkedInFake, install: Install
) -> None:
    """token_expires_at 5 days ahead: `accounts check` warns with the date, `status`
    lists the account under expiring_tokens and says to renew it."""
    when = _linkedin(install, linkedin_fake, days_left=5)
    entry = install.check("linkedin")
    assert entry["warning"].startswith(f"the token expires {_day(when)}")
    assert list(install.json("status")["expiring_tokens"]) == ["linkedin"]
    assert f"token of linkedin expires {_day(when)}" in install.run("status").stdout


def test_linkedin_expiry_beyond_the_warning_days_is_not_warned_about(
    linkedin_fake: LinkedInFake, install: Install
) -> None:
    """30 days ahead: the date is reported, no warning yet."""
    _linkedin(install, linkedin_fake, days_left=30)
    entry = install.check("linkedin")
    assert entry["token_expires_at"] is not None
    assert "warning" not in entry
    assert install.json("status")["expiring_tokens"] == {}
