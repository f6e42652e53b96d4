"""Bad input, configuration: at least 500 generated configuration files and environments.

A valid configuration changed in type, value and key (unknown keys are refused,
not ignored), with insecure URLs, unknown time zones, database URLs no driver
can open, invalid UTF-8, a BOM, CRLF, deep nesting and huge files, sometimes
overridden by ``CROSSPOST_*`` variables. Every run exits 0 or 2 (1 only when an
unreachable database answers) with one line naming the file or the key, never a
traceback and never a database password; a refusal leaves the database unchanged.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.reliability.badinput import (
    HYPOTHESIS,
    World,
    exercise,
    make_world,
    report,
    toml_string,
    weighted,
)
from tests.reliability.conftest import SITE, Figures

# -- configuration files ----------------------------------------------------------------------
BASE_CONFIG: dict[str, Any] = {
    "site": {
        "url": SITE,
        "name": "Zweckverband Städtedreieck",
        "timezone": "Europe/Berlin",
        "link_hosts": ["termine.zv-staedtedreieck.de"],
    },
    "database": {"url": "sqlite:///crosspost.db"},
    "daemon": {"lease_seconds": 30, "poll_interval": 0.2},
    "accounts": {
        "mastodon": {
            "platform": "mastodon",
            "base_url": "https://social.example",
            "token_env": "CROSSPOST_TEST_MASTODON_TOKEN",
        },
        "hook": {"platform": "webhook", "url": "https://hooks.example/crosspost", "token_env": "H"},
        "website": {"platform": "feed", "path": "site"},
    },
    "routing": {"stellenangebot": ["mastodon", "website"]},
}

#: (dotted key, value, must be refused)
CONFIG_CHANGES: list[tuple[str, Any, bool]] = [
    ("site.url", "http://www.zv-staedtedreieck.de", False),
    ("site.url", "javascript:alert(1)", True),
    ("site.url", "www.zv-staedtedreieck.de", True),
    ("site.url", 5, True),
    ("site.timezone", "Europe/Bonn", True),
    ("site.timezone", "../../etc/passwd", True),
    ("site.timezone", "UTC", False),
    ("site.link_hosts", "termine.zv-staedtedreieck.de", True),
    ("site.categories", ["a", "b"], True),  # routing names stellenangebot, no longer a category
    ("site.unknown", 1, True),
    ("database.url", "nonsense", True),
    ("database.url", "mysql://u@localhost/db", True),
    ("database.url", "sqlite:///gibt/es/nicht.db", True),
    ("database.url", "postgresql+psycopg://u:geheim@127.0.0.1:1/db", False),  # exit 1: unreachable
    ("database.pool", 5, True),
    ("daemon.lease_seconds", 0, True),
    ("daemon.lease_seconds", "lang", True),
    ("daemon.concurrency", 1000, True),
    ("daemon.poll_interval", float("inf"), True),
    ("daemon.poll_interval", float("nan"), True),
    ("daemon.max_attempts", -1, True),
    ("daemon.nope", True, True),
    ("accounts.mastodon.base_url", "http://social.example", True),
    ("accounts.mastodon.base_url", "http://127.0.0.1:8080", False),
    ("accounts.mastodon.base_url", "http://[::1]:8080", False),
    ("accounts.mastodon.base_url", "http://127.0.0.1.evil.example", True),
    ("accounts.mastodon.base_url", "javascript:alert(1)", True),
    ("accounts.mastodon.base_url", "https://", True),
    ("accounts.mastodon.base_url", None, True),  # Mastodon has no default instance
    ("accounts.mastodon.allow_insecure_http", "ja", True),
    ("accounts.mastodon.visibility", "everyone", True),
    ("accounts.mastodon.max_characters", 0, True),
    ("accounts.mastodon.max_characters", "500", False),  # numeric text is read as a number
    ("accounts.mastodon.platform", "myspace", True),
    ("accounts.mastodon.token", "geheim", True),  # secrets never live in the TOML
    ("accounts.mastodon.enabled", "nein", True),
    ("accounts.hook.url", "http://hooks.example/crosspost", True),
    ("accounts.hook.url", "ftp://hooks.example/", True),
    ("accounts.hook.url", None, True),
    ("accounts.website.path", 5, True),
    ("accounts.website.path", None, True),
    ("accounts.neu", {"platform": "console"}, False),
    ("accounts.neu", {"platform": "bluesky"}, True),  # handle missing
    ("accounts.neu", "console", True),
    ("accounts", [], True),
    ("routing.stellenangebot", ["nirgends"], True),
    ("routing.unbekannt", ["mastodon"], True),
    ("routing.stellenangebot", "mastodon", True),
    ("unknown_section", {"a": 1}, True),
    ("site", None, True),
]
ENV_CHANGES: list[tuple[str, str, bool]] = [
    ("CROSSPOST_DAEMON__CONCURRENCY", "viele", True),
    ("CROSSPOST_DAEMON__CONCURRENCY", "8", False),
    ("CROSSPOST_SITE__URL", "ftp://x", True),
    ("CROSSPOST_SITE", "{kein json", True),
    ("CROSSPOST_ACCOUNTS", '{"x": {"platform": "nope"}}', True),
    ("CROSSPOST_DATABASE__URL", "sqlite:///crosspost.db", False),
]


def set_key(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    target = data
    for part in parents:
        target = target.setdefault(part, {})
        if not isinstance(target, dict):
            return
    if value is None:
        target.pop(last, None)
    else:
        target[last] = value


def to_toml(data: dict[str, Any]) -> str:
    """A small TOML writer for the shapes above (tables of scalars, lists and tables)."""

    def scalar(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float):
            if value != value:
                return "nan"
            if value in (float("inf"), float("-inf")):
                return "inf" if value > 0 else "-inf"
            return repr(value)
        if isinstance(value, int):
            return str(value)
        if isinstance(value, str):
            return toml_string(value)
        if isinstance(value, list):
            return "[" + ", ".join(scalar(v) for v in value) + "]"
        if isinstance(value, dict):
            return (
                "{ " + ", ".join(f"{json.dumps(k)} = {scalar(v)}" for k, v in value.items()) + " }"
            )
        raise TypeError(value)

    lines: list[str] = []

    def table(prefix: str, values: dict[str, Any]) -> None:
        plain = {k: v for k, v in values.items() if not isinstance(v, dict)}
        nested = {k: v for k, v in values.items() if isinstance(v, dict)}
        if prefix and (plain or not nested):
            lines.append(f"[{prefix}]")
        lines.extend(f"{json.dumps(k)} = {scalar(v)}" for k, v in plain.items())
        for key, sub in nested.items():
            table(f"{prefix}.{json.dumps(key)}" if prefix else json.dumps(key), sub)

    plain_top = {k: v for k, v in data.items() if not isinstance(v, dict)}
    lines.extend(f"{json.dumps(k)} = {scalar(v)}" for k, v in plain_top.items())
    table("", {k: v for k, v in data.items() if isinstance(v, dict)})
    return "\n".join(lines) + "\n"


CONFIG_MUTATIONS = [
    *["none"] * 10, "bom", "crlf", "invalid-utf8", "truncated", "deep-nesting",
    "huge", "duplicate-key", "empty", "nul",
]  # fmt: skip


@dataclass
class ConfigCase:
    text: bytes
    env: dict[str, str]
    command: list[str]
    must_refuse: list[str]
    unsure: bool


@st.composite
def config_cases(draw: st.DrawFn) -> ConfigCase:
    import copy

    data = copy.deepcopy(BASE_CONFIG)
    reasons: list[str] = []
    unsure = False
    changes = draw(
        weighted((2, st.just([])), (3, st.lists(st.sampled_from(CONFIG_CHANGES), max_size=3)))
    )
    keys = [key for key, _v, _r in changes]
    if any(a == b or b.startswith(a + ".") for i, a in enumerate(keys) for b in keys[i + 1 :]):
        unsure = True  # a later change may undo an earlier one
    for key, value, refuse in changes:
        set_key(data, key, value)
        if refuse:
            reasons.append(f"{key}={value!r}")
        if key.startswith("database.url"):
            unsure = True  # exit 1 (unreachable) or 2: the database's answer decides
    if draw(st.integers(0, 4)) == 0:
        section = draw(st.sampled_from(["site", "daemon", "database", "accounts.mastodon"]))
        key = draw(st.text(string.ascii_lowercase + "_", min_size=1, max_size=12))
        known = {
            "site": {"url", "name", "timezone", "link_hosts", "categories"},
            "daemon": set(),
            "database": {"url"},
            "accounts.mastodon": set(),
        }[section]
        if key not in known:
            set_key(data, f"{section}.{key}", draw(st.sampled_from([1, "x", True, [1]])))
            unsure = True  # a daemon or account key of that name may exist
    text = to_toml(data).encode("utf-8")
    mutation = draw(st.sampled_from(CONFIG_MUTATIONS))
    if mutation == "bom":
        text = b"\xef\xbb\xbf" + text
    elif mutation == "crlf":
        text = text.replace(b"\n", b"\r\n")
    elif mutation == "invalid-utf8":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + b"\xc3\x28" + text[at:]
        reasons.append("invalid UTF-8")
    elif mutation == "truncated":
        text = text[: draw(st.integers(0, len(text)))]
        unsure = True
    elif mutation == "deep-nesting":
        # shallow enough for any parser, or far too deep for any: between the two, where
        # the refusal comes depends on the interpreter's recursion limit (hypothesis
        # raises it), and the installed command could refuse for another reason
        depth = draw(st.one_of(st.integers(50, 200), st.integers(10_000, 20_000)))
        text += b"tief = " + b"[" * depth + b"]" * depth + b"\n"
        reasons.append("deep nesting")
    elif mutation == "huge":
        text += b"# " + b"x" * (1024 * 1024) + b"\n"
        reasons.append("huge")
    elif mutation == "duplicate-key":
        text += b'[database]\nurl = "sqlite:///crosspost.db"\n'
        reasons.append("duplicate table")
    elif mutation == "empty":
        text = b""
        reasons.append("empty (site missing)")
    elif mutation == "nul":
        text += b"\x00"
        reasons.append("NUL")
    env: dict[str, str] = {}
    if draw(st.integers(0, 3)) == 0:
        name, value, refuse = draw(st.sampled_from(ENV_CHANGES))
        env[name] = value
        if refuse:
            reasons.append(f"${name}")
        if name == "CROSSPOST_DATABASE__URL":
            unsure = True
        overridden = ["CROSSPOST_" + key.upper().replace(".", "__") for key in keys]
        if name in overridden:
            unsure = True  # the environment overrides the file's value, bad or good
    command = draw(
        st.sampled_from(
            [
                ["status"],
                ["list", "--json"],
                ["accounts"],
                ["enqueue", "--dry-run", "--text", "Ein Test."],
                ["enqueue", "--text", "Ein Test."],
                ["preview", "1"],
            ]
        )
    )
    return ConfigCase(text, env, command, reasons, unsure)


@pytest.fixture(scope="module")
def config_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    world = make_world(tmp_path_factory.mktemp("config-files"))
    assert world.run(["enqueue", "--text", "Vorhanden", "--to", "website"]).code == 0
    return world


@HYPOTHESIS
@given(case=config_cases())
def test_generated_config_files(config_world: World, case: ConfigCase) -> None:
    """Configuration files and environment overrides of every shape: wrong types,
    unknown keys (refused, not ignored), insecure URLs, invalid UTF-8, BOM, CRLF,
    deep nesting, huge files: exit 0 or 2 with one line naming the file or key; the
    database is untouched by a refusal."""
    path = config_world.case_dir() / "crosspost.toml"
    path.write_bytes(case.text)
    saved = dict(config_world.env)
    config_world.env.update(case.env)
    try:
        result = exercise(
            config_world,
            ["--config", str(path), *case.command],
            must_refuse=[] if case.unsure else case.must_refuse,
            must_accept=False,
            allowed=(0, 1, 2) if case.unsure else (0, 2),
        )
    finally:
        config_world.env.clear()
        config_world.env.update(saved)
    assert "geheim" not in result.stdout + result.stderr  # a database password is never shown
    if result.code == 1:
        assert "database" in result.stderr, result.describe()
    if result.code == 2 and case.must_refuse and not case.unsure:
        line = result.stderr.strip()
        assert str(path) in line or "environment" in line or "database.url" in line, line


def test_config_file_cases_were_counted(config_world: World, figures: Figures) -> None:
    """At least 500 generated configuration files ran, on both sides of the line."""
    report(config_world, figures, "config_files")


@pytest.mark.parametrize(
    ("account", "code", "needle"),
    [
        ('base_url = "http://social.example"', 2, "must use https"),
        ('base_url = "http://social.example"\nallow_insecure_http = true', 0, ""),
        ('base_url = "http://127.0.0.1:3000"', 0, ""),
        ('base_url = "https://social.example"\ntoken = "geheim"', 2, "token: unknown key"),
    ],
    ids=["http", "http-allowed-explicitly", "http-loopback", "secret-in-toml"],
)
def test_named_config_files(config_world: World, account: str, code: int, needle: str) -> None:
    """https unless loopback or allowed explicitly; unknown keys are refused, not ignored."""
    path = config_world.case_dir() / "crosspost.toml"
    text = to_toml(BASE_CONFIG).replace('base_url = "https://social.example"', account)
    path.write_text(text.replace('"base_url" = "https://social.example"', account))
    result = exercise(config_world, ["--config", str(path), "accounts"], must_refuse=[],
                      must_accept=code == 0)  # fmt: skip
    assert result.code == code, result.describe()
    assert needle in result.stderr
