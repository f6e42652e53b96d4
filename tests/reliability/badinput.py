"""What the three bad-input suites share: a world to run in, the checks of every
case, and the generators of values (links, texts) they all use.

A *world* is a folder that is a complete installation — configuration with
relative paths, database, feed — so a copy of it taken before a case can replay
that case through the installed command and must give the same answer.
"""

from __future__ import annotations

import json
import string
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from tests.reliability.conftest import (
    FULL,
    SITE,
    Figures,
    Run,
    check_outcome,
    clean_env,
    copy_world,
    db_digest,
    run_inprocess,
    run_installed,
    scaled,
    settle_wal,
)

EXAMPLES = scaled(520, 2500)
#: every how many generated cases one is replayed through the installed command
REPLAY_EVERY = scaled(65, 50)

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
    "0000000c4944415478da63f8cfc000000301010018dd8db00000000049454e44ae426082"
)

CONFIG = """\
[site]
url = "https://www.zv-staedtedreieck.de"
name = "Zweckverband Städtedreieck"
timezone = "Europe/Berlin"
link_hosts = ["termine.zv-staedtedreieck.de"]

[database]
url = "sqlite:///crosspost.db"

[accounts.mastodon]
platform = "mastodon"
base_url = "http://127.0.0.1:9"
token_env = "CROSSPOST_TEST_MASTODON_TOKEN"
max_characters = 500

[accounts.bluesky]
platform = "bluesky"
handle = "staedtedreieck.test"
base_url = "http://127.0.0.1:9"
token_env = "CROSSPOST_TEST_BLUESKY_TOKEN"

[accounts.telegram]
platform = "telegram"
chat = "@staedtedreieck"
base_url = "http://127.0.0.1:9"
token_env = "CROSSPOST_TEST_TELEGRAM_TOKEN"

[accounts.website]
platform = "feed"
path = "site"

[accounts.archiv]
platform = "console"
enabled = false

[routing]
stellenangebot = ["mastodon", "website"]
"""


@dataclass
class World:
    """A folder that is a complete installation: config (relative paths), database, feed."""

    root: Path
    cases: Path
    env: dict[str, str] = field(repr=False)
    tried: int = 0
    refused: int = 0
    accepted: int = 0
    replayed: int = 0
    #: a copy of the world taken before the case that is replayed next
    before: Path | None = None

    @property
    def db(self) -> Path:
        return self.root / "crosspost.db"

    def run(self, args: list[str]) -> Run:
        return run_inprocess(args, env=self.env, cwd=self.root)

    def case_dir(self) -> Path:
        return Path(tempfile.mkdtemp(prefix="case-", dir=self.cases))

    def replay(self, args: list[str], expected: Run) -> None:
        """The installed command, in a copy of the world as it was before, answers the same."""
        self.replayed += 1
        assert self.before is not None
        copy = copy_world(self.before, self.cases / f"replay-{self.replayed}")
        env = dict(self.env)
        if "CROSSPOST_CONFIG" in env:
            env["CROSSPOST_CONFIG"] = env["CROSSPOST_CONFIG"].replace(str(self.root), str(copy))
        real = run_installed(args, env=env, cwd=copy)
        check_outcome(real, allowed=(0, 1, 2))
        assert real.code == expected.code, (
            f"{expected.describe()}\n-- installed --\n{real.describe()}"
        )
        if expected.code != 0:
            assert real.stderr == expected.stderr, (expected.stderr, real.stderr)

    def snapshot(self) -> None:
        """Keep the world as it is now, for a replay of the next case."""
        self.before = copy_world(self.root, self.cases / f"before-{self.replayed + 1}")


def dedup_off() -> str:
    """``[dedup] days = 0`` where the configuration has the duplicate guard (issue 7).

    Generated posts repeat the same few links and texts by design, so the guard would
    refuse most of the valid ones a second time and the oracle ("certainly valid is
    accepted") would test the guard instead of the input; the guard has its own tests.
    """
    from crosspost.config import Settings

    return "\n[dedup]\ndays = 0\n" if "dedup" in Settings.model_fields else ""


def make_world(root: Path) -> World:
    world_dir = root / "world"
    world_dir.mkdir()
    (world_dir / "crosspost.toml").write_text(CONFIG + dedup_off(), encoding="utf-8")
    cases = root / "cases"
    cases.mkdir()
    # an image outside every case folder, for symlinks that lead out of it
    (root / "outside.jpg").write_bytes(JPEG)
    env = clean_env(CROSSPOST_CONFIG=str(world_dir / "crosspost.toml"))
    world = World(world_dir, cases, env)
    created = world.run(["db", "upgrade"])
    assert created.code == 0, created.describe()
    return world


def exercise(
    world: World,
    args: list[str],
    *,
    must_refuse: list[str],
    must_accept: bool,
    allowed: tuple[int, ...] = (0, 2),
    accepted_ok: Callable[[Run], bool] | None = None,
) -> Run:
    """Run one case and check every promise about it."""
    world.tried += 1
    replay = world.tried % REPLAY_EVERY == 0
    if replay:
        world.snapshot()
    settle_wal(world.db)
    before = db_digest(world.db)
    result = world.run(args)
    check_outcome(result, allowed=allowed)
    if result.code == 2:
        world.refused += 1
        assert db_digest(world.db) == before, "a refused input changed the database:\n" + (
            result.describe()
        )
    else:
        world.accepted += 1
    if must_refuse:
        assert result.code == 2, f"should be refused ({must_refuse}):\n{result.describe()}"
    if must_accept:
        assert result.code == 0, f"should be accepted:\n{result.describe()}"
    if accepted_ok is not None and result.code == 0:
        assert accepted_ok(result), result.describe()
    if replay:
        world.replay(args, result)
    return result


def report(world: World, figures: Figures, kind: str) -> None:
    figures.add(f"bad_input.{kind}.cases", world.tried)
    figures.add(f"bad_input.{kind}.refused", world.refused)
    figures.add(f"bad_input.{kind}.accepted", world.accepted)
    figures.add(f"bad_input.{kind}.through_installed_command", world.replayed)
    figures.add("bad_input.cases", world.tried)
    assert world.tried >= (500 if EXAMPLES >= 500 else EXAMPLES)
    # The generators are worth something only if they reach both sides of the line.
    assert world.refused >= world.tried // 10, (world.refused, world.tried)
    assert world.accepted >= world.tried // 20, (world.accepted, world.tried)


HYPOTHESIS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not FULL,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# -- values ---------------------------------------------------------------------------------
def toml_string(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(value, ensure_ascii=False)


FORBIDDEN = {
    chr(c) for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0)]
}


def forbidden(text: str) -> bool:
    return any(ch in FORBIDDEN for ch in text)


any_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=60)
safe_text = st.text(
    st.sampled_from(string.ascii_letters + string.digits + " .,!?-äöüßÄÖÜ€🎄👋„“"),
    min_size=1,
    max_size=60,
).filter(lambda s: s.strip())

GOOD_LINKS = [
    f"{SITE}/aktuelles/weihnachtsmarkt",
    SITE,
    f"{SITE}/",
    f"{SITE}/stellen/2026-01?ref=amtsblatt",
    "https://termine.zv-staedtedreieck.de/kalender",
    "https://WWW.ZV-STAEDTEDREIECK.DE/gross",
]
BAD_LINKS = [
    "https://evil.example/aktuelles",
    "javascript:alert(1)",
    "JavaScript://www.zv-staedtedreieck.de/%0aalert(document.cookie)",
    "data:text/html,<script>alert(1)</script>",
    "http://www.zv-staedtedreieck.de/ohne-tls",
    "//www.zv-staedtedreieck.de/relativ",
    "ftp://www.zv-staedtedreieck.de/",
    "www.zv-staedtedreieck.de/ohne-schema",
    "https://www.zv-städtedreieck.de/umlaut",  # IDN look-alike
    "https://www.zv-staedtedreіeck.de/kyrillisch",  # Cyrillic і
    "https://www.zv-staedtedrеieck.de/kyrillisch-e",  # Cyrillic е
    "https://ｗｗｗ.zv-staedtedreieck.de/vollbreit",  # fullwidth, folded by the idna codec
    "https://www.zv-ſtaedtedreieck.de/langes-s",  # long s, folded to "s" by the idna codec
    "https://www.zv-staedtedreieck.de.evil.example/",
    "https://www.zv-staedtedreieck.de@evil.example/",
    "https://evil.example\\@www.zv-staedtedreieck.de/",
    "https://user:pass@www.zv-staedtedreieck.de/",
    "https://www.zv-staedtedreieck.de/mit leerzeichen",
    "https://www.zv-staedtedreieck.de/\u200bunsichtbar",
    "https://www.zv-staedtedreieck.de/\u202eumgekehrt",
    "https://termine.zv-staedtedreieck.de.evil.example/",
    "https://zv-staedtedreieck.de/ohne-www",
]

Part = tuple[str, list[str], bool]  # (TOML text, reasons it must be refused, unsure)
T = TypeVar("T")


def weighted(*options: tuple[int, st.SearchStrategy[T]]) -> st.SearchStrategy[T]:
    """One of the strategies, chosen in proportion to its weight (valid input stays common)."""
    choices = [strategy for weight, strategy in options for _ in range(weight)]
    return st.integers(0, len(choices) - 1).flatmap(lambda i: choices[i])
