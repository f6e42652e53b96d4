"""Issue 3 (X): token expiry is warned about in ``status`` and ``accounts check`` days
before it happens — and only then: a refreshing X account's two-hour access token renews
itself and is no reason to warn.

The installed ``crosspost`` command runs in a subprocess against the X fake (which
validates every request against ``x-openapi.json``) on a real SQLite queue.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from tests.commandline import CommandLine
from tests.fakes.x import DEFAULT_REFRESH, XFake

TOKEN_ENV = "CROSSPOST_TEST_X_TOKEN"


@dataclass
class Install(CommandLine):
    root: Path
    env: dict[str, str]
    processes: list[Any] = field(default_factory=list)

    def configure(self, fake: XFake, *, refresh: bool, expires_in: timedelta | None) -> None:
        account = [
            "[accounts.x]",
            'platform = "x"',
            f'base_url = "{fake.url}"',
            f'token_env = "{TOKEN_ENV}"',
        ]
        if refresh:
            token_file = self.root / "x-refresh-token"
            token_file.write_text(DEFAULT_REFRESH + "\n", encoding="utf-8")
            token_file.chmod(0o600)
            account += [f'refresh_token_file = "{token_file}"', f'client_id = "{fake.client_id}"']
        if expires_in is not None:
            when = datetime.now(UTC).replace(microsecond=0) + expires_in
            account.append(f"token_expires_at = {when.isoformat().replace('+00:00', 'Z')}")
        (self.root / "crosspost.toml").write_text(
            "\n".join(
                [
                    "[site]",
                    'url = "https://www.zv-staedtedreieck.de"',
                    'name = "Zweckverband Städtedreieck"',
                    "[database]",
                    f'url = "sqlite:///{self.root}/crosspost.db"',
                    "[daemon]",
                    f'state_dir = "{self.root}/state"',
                    "token_expiry_warning_days = 14",
                    *account,
                ]
            )
            + "\n",
            encoding="utf-8",
        )
        self.env[TOKEN_ENV] = fake.token
        self.env["CROSSPOST_CONFIG"] = str(self.root / "crosspost.toml")
        self.run("db", "upgrade")


@pytest.fixture
def install(tmp_path: Path) -> Install:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSPOST_")}
    env |= {"LANGUAGE": "en", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    return Install(root=tmp_path, env=env)


def check(install: Install) -> dict[str, Any]:
    [entry] = json.loads(install.run("accounts", "check", "--json").stdout)
    assert (entry["account"], entry["ok"]) == ("x", True), entry
    return dict(entry)


def test_a_refreshing_x_account_is_not_warned_about_its_two_hour_access_token(
    x_fake: XFake, install: Install
) -> None:
    """The access token is expired and renewed during `accounts check` (a refresh, two
    hours on): neither `accounts check` nor `status` (text or --json) calls for renewal."""
    install.configure(x_fake, refresh=True, expires_in=None)
    x_fake.expire_access_tokens()
    entry = check(install)
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
    install.configure(x_fake, refresh=True, expires_in=timedelta(days=5))
    entry = check(install)
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
    install.configure(x_fake, refresh=False, expires_in=timedelta(days=30))
    entry = check(install)
    assert entry["token_expires_at"] is not None
    assert "warning" not in entry
    assert install.json("status")["expiring_tokens"] == {}
