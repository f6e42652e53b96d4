"""The front door: which requests it answers itself, and how it keys them."""

from __future__ import annotations

import io
import shutil
import sys

import pytest

from crosspost import entry


@pytest.mark.parametrize(
    ("argv", "answered"),
    [
        ([], True),
        (["--help"], True),
        (["-h"], True),
        (["--version"], True),
        (["enqueue", "--help"], True),
        (["accounts", "check", "-h"], True),
        (["db", "upgrade", "--help"], True),
        (["--help", "enqueue"], False),
        (["enqueue", "x.md", "--help"], False),  # a file name, not a command
        (["--config", "a.toml", "--help"], False),
        (["enqueue", "--text", "--help"], False),
        (["--version", "--help"], False),
        (["list"], False),
        (["Enqueue", "--help"], False),
        (["enqueue"], False),
    ],
)
def test_only_plain_help_requests_are_answered_from_the_cache(
    argv: list[str], answered: bool
) -> None:
    """Help, version and the bare command; anything with other arguments goes to click."""
    assert entry.is_help_request(argv) is answered


@pytest.mark.parametrize("columns", ["", "0", "abc", "40", "79", "80", "200"])
def test_terminal_width_is_the_one_click_wraps_to(
    monkeypatch: pytest.MonkeyPatch, columns: str
) -> None:
    """The width in the key is shutil.get_terminal_size's, which click uses."""
    monkeypatch.setenv("COLUMNS", columns)
    assert entry.terminal_columns() == shutil.get_terminal_size().columns


def test_the_key_changes_with_language_width_and_arguments(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A help text in another language, width or for another command is another entry."""
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("LANGUAGE", "C")
    base = entry.help_key(["--help"])
    monkeypatch.setenv("LANGUAGE", "de")
    german = entry.help_key(["--help"])
    monkeypatch.setenv("COLUMNS", "60")
    narrow = entry.help_key(["--help"])
    assert len({base, german, narrow, entry.help_key(["-h"])}) == 4


def test_recorder_writes_through_and_keeps_a_copy() -> None:
    """What click writes reaches the stream and the copy; asking for bytes taints it."""
    target = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    recorder = entry.Recorder(target)
    recorder.write("Usage: crosspost\n")
    with pytest.raises(TypeError):
        recorder.write(b"raw")  # type: ignore[arg-type]  # the wrong type on purpose
    assert recorder.text == "Usage: crosspost\n"
    assert target.buffer.getvalue() == b"Usage: crosspost\n"
    assert recorder.encoding == "utf-8"
    assert not recorder.tainted
    assert recorder.buffer is target.buffer
    assert recorder.tainted


def test_streams_that_are_not_utf8_take_the_full_path() -> None:
    """click may rewrap such a stream; the quick paths do not guess what it writes."""
    assert entry.utf8_stream(io.TextIOWrapper(io.BytesIO(), encoding="utf-8"))
    assert entry.utf8_stream(io.TextIOWrapper(io.BytesIO(), encoding="UTF8"))
    assert not entry.utf8_stream(io.TextIOWrapper(io.BytesIO(), encoding="ascii"))
    assert not entry.utf8_stream(None)
    assert not entry.utf8_stream(io.StringIO())  # no encoding at all


def test_shell_completion_and_the_switch_take_the_full_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """_CROSSPOST_COMPLETE (click's completion) and CROSSPOST_NO_CACHE=1 bypass the cache."""
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(io.BytesIO(), encoding="utf-8"))
    monkeypatch.setattr(sys, "stderr", io.TextIOWrapper(io.BytesIO(), encoding="utf-8"))
    assert entry._quick_paths_allowed()
    monkeypatch.setenv("_CROSSPOST_COMPLETE", "bash_source")
    assert not entry._quick_paths_allowed()
    monkeypatch.delenv("_CROSSPOST_COMPLETE")
    monkeypatch.setenv("CROSSPOST_NO_CACHE", "1")
    assert not entry._quick_paths_allowed()
