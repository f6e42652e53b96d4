"""Bad input, command lines: at least 500 generated argument lists.

Commands, options and values drawn from times ("+2h", DST gaps, out of range),
post ids (huge, negative, "²"), links, account names and bytes that are not
UTF-8 (lone surrogates, as Python hands them over). Every run exits 0 or 2 with
one clear line (1 only where a command honestly changed nothing), never a
traceback; a refusal leaves the database byte for byte as it was.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import given, reject
from hypothesis import strategies as st
from tests.reliability.badinput import (
    BAD_LINKS,
    GOOD_LINKS,
    HYPOTHESIS,
    World,
    any_text,
    exercise,
    make_world,
    report,
)
from tests.reliability.conftest import SITE, Figures, nothing_to_do

# -- command lines ------------------------------------------------------------------------------
WHEN = [
    "now", "+2h", "+90m", "+1d", "2026-12-01 09:00", "2027-01-01T09:00:00+01:00",
    "2026-03-29 02:30", "2026-10-25 02:30", "gestern", "", " ", "+0s", "-2h",
    "+99999999999999999999d", "9999-12-31T23:59:59+14:00", "0001-01-01T00:00:00-14:00",
    "2026-02-30 10:00", "25:00", "today", "2h", "1e9",
]  # fmt: skip
IDS = ["1", "2", "3", "0", "-1", "999", "99999999999999999999999", "1.5", "eins", "0x10", "²", "٣"]


def cli_value() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(WHEN),
        st.sampled_from(IDS),
        st.sampled_from(GOOD_LINKS + BAD_LINKS),
        st.sampled_from(["mastodon", "website", "mastodon,website", "nope", ",,", "archiv"]),
        st.sampled_from(["veranstaltung", "unbekannt", "failed", "pending", "published"]),
        any_text,
        # bytes that are not UTF-8 arrive as lone surrogates, as on a real command line
        st.binary(min_size=1, max_size=12).map(lambda b: os.fsdecode(b.replace(b"\x00", b""))),
    ).filter(lambda v: "\x00" not in v)


#: options per command: (option, takes a value)
COMMANDS: dict[str, list[tuple[str, bool]]] = {
    "enqueue": [("--text", True), ("--title", True), ("--link", True), ("--at", True),
                ("--to", True), ("--category", True), ("--dry-run", False), ("--json", False)],
    "preview": [("--json", False)],
    "list": [("--status", True), ("--limit", True), ("--json", False)],
    "show": [("--json", False)],
    "cancel": [],
    "reschedule": [("--at", True)],
    "retry": [("--failed", False)],
    "log": [("--post", True), ("--since", True), ("--json", False)],
    "status": [("--json", False)],
    "accounts": [("--json", False)],
    "retract": [("--json", False)],
    "db": [],
}  # fmt: skip
GLOBAL = [("-v", False), ("-q", False), ("--config", True), ("--help", False), ("--version", False)]
NEVER = {"-f", "--follow", "daemon", "metrics", "check", "collect"}


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    args: list[str] = []
    for option, takes in draw(st.lists(st.sampled_from(GLOBAL), max_size=2)):
        if option == "--help" and draw(st.booleans()):
            continue
        args.append(option)
        if takes:
            args.append(draw(st.one_of(cli_value(), st.just("crosspost.toml"))))
    command = draw(st.sampled_from([*COMMANDS, "unbekannt", ""]))
    if command:
        args.append(command)
    if command == "db":
        args.append(draw(st.sampled_from(["upgrade", "downgrade", ""])))
    options = COMMANDS.get(command, [])
    for _ in range(draw(st.integers(0, 4))):
        choice = draw(st.integers(0, 9))
        if choice < 6 and options:
            option, takes = draw(st.sampled_from(options))
            args.append(option)
            if takes:
                args.append(draw(cli_value()))
        elif choice < 8:
            args.append(draw(st.one_of(st.sampled_from(IDS), cli_value())))
        else:
            args.append(draw(st.sampled_from(["--nope", "-x", "--json=1", "--", "-"])))
    args = [a for a in args if a != ""] if draw(st.booleans()) else args
    for arg in args:
        if arg in NEVER or arg.startswith("-f"):
            reject()  # commands that never end or reach the network
    return args


@pytest.fixture(scope="module")
def cli_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    world = make_world(tmp_path_factory.mktemp("command-lines"))
    for args in (
        ["enqueue", "--text", "Erster Beitrag", "--at", "2027-01-01 09:00"],
        ["enqueue", "--text", "Zweiter Beitrag", "--to", "mastodon", "--at", "+3d"],
        ["enqueue", "--text", "Dritter Beitrag", "--link", f"{SITE}/drei"],
    ):
        assert world.run(args).code == 0
    return world


@HYPOTHESIS
@given(args=command_lines())
def test_generated_command_lines(cli_world: World, args: list[str]) -> None:
    """Random commands, options and values (times, ids, links, non-UTF-8 bytes): exit 0
    or 2 with one clear line (1 only where nothing was left to change), never a
    traceback; a refusal leaves the database unchanged."""
    result = exercise(cli_world, args, must_refuse=[], must_accept=False, allowed=(0, 1, 2))
    if result.code == 1:
        assert nothing_to_do(result), result.describe()


def test_command_line_cases_were_counted(cli_world: World, figures: Figures) -> None:
    """At least 500 generated command lines ran, on both sides of the line."""
    report(cli_world, figures, "command_lines")
