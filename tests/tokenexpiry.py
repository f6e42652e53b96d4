"""An installed ``crosspost`` on a SQLite queue with one account, for the token-expiry
tests (``daemon.token_expiry_warning_days`` 14): shared by the X, Threads and
LinkedIn cases."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.commandline import CommandLine


@dataclass
class Install(CommandLine):
    root: Path
    env: dict[str, str]
    processes: list[Any] = field(default_factory=list)

    def configure_account(self, lines: list[str], token_env: str, token: str) -> None:
        """Write the configuration with the account's TOML ``lines``, its token in
        ``token_env``, and migrate the queue."""
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
                    *lines,
                ]
            )
            + "\n",
            encoding="utf-8",
        )
        self.env[token_env] = token
        self.env["CROSSPOST_CONFIG"] = str(self.root / "crosspost.toml")
        self.run("db", "upgrade")

    def check(self, name: str) -> dict[str, Any]:
        """``accounts check --json``'s entry of the one account, which must be ok."""
        [entry] = json.loads(self.run("accounts", "check", "--json").stdout)
        assert (entry["account"], entry["ok"]) == (name, True), entry
        return dict(entry)


def new_install(root: Path) -> Install:
    """An Install in ``root`` with no ``CROSSPOST_*`` variables and English messages."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSPOST_")}
    env |= {"LANGUAGE": "en", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    return Install(root=root, env=env)
