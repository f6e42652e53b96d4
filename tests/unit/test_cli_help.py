"""Every command has help, and every command is documented for its readers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from crosspost import __version__
from crosspost.cli import main_group

ROOT = Path(__file__).resolve().parents[2]


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in sorted(group.commands.items()):
        path = (*prefix, name)
        yield path
        if isinstance(command, click.Group):
            yield from _commands(command, path)


COMMANDS = list(_commands(main_group))


def test_the_contract_commands_exist() -> None:
    """The commands SPEC.md names are all there."""
    names = {" ".join(c) for c in COMMANDS}
    wanted = ["enqueue", "preview", "list", "show", "cancel", "reschedule", "retry", "retract",
              "log", "status", "accounts", "accounts check", "daemon", "db upgrade"]  # fmt: skip
    assert [w for w in wanted if w not in names] == []


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command: tuple[str, ...]) -> None:
    """`crosspost <command> --help` exits 0 and explains the command."""
    result = CliRunner().invoke(main_group, [*command, "--help"], env={"LANGUAGE": "C"})
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    described: click.Command = main_group
    for part in command:
        assert isinstance(described, click.Group)  # every part but the last names a group
        described = described.commands[part]
    assert (described.help or "").strip(), f"{command} has no help text"


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_is_documented(command: tuple[str, ...]) -> None:
    """Each command appears in the README or the docs for editors and admins."""
    docs = "\n".join(
        p.read_text(encoding="utf-8")
        for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    )
    assert f"crosspost {' '.join(command)}" in docs or f"`{' '.join(command)}`" in docs


def test_version() -> None:
    """--version prints the package version."""
    result = CliRunner().invoke(main_group, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output
