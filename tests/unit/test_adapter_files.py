"""The files adapters read and write (``crosspost.adapters._files``) and the timestamps
they parse (``crosspost.adapters._timestamps``)."""

from __future__ import annotations

import asyncio
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crosspost.adapters._files import read_image, replace_file, write_private
from crosspost.adapters._timestamps import parse_time
from crosspost.exceptions import Rejected
from crosspost.models import Media


def test_an_image_is_read_whole(tmp_path: Path) -> None:
    """The bytes of the file, unchanged."""
    path = tmp_path / "bild.png"
    path.write_bytes(b"\x89PNG fake image")
    assert asyncio.run(read_image(Media(path, "Alt"))) == b"\x89PNG fake image"


def test_an_unreadable_image_is_rejected_unsent_naming_the_file(tmp_path: Path) -> None:
    """A missing file fails for good (a retry will not make it readable), before sending."""
    with pytest.raises(Rejected, match=r"fehlt\.jpg: cannot read the image") as caught:
        asyncio.run(read_image(Media(tmp_path / "fehlt.jpg", "Alt")))
    assert caught.value.sent is False


def test_a_private_file_is_the_owners_alone_and_replaced_whole(tmp_path: Path) -> None:
    """0600 whatever the umask allows; a second write replaces the first; no temporary
    file is left behind."""
    path = tmp_path / "session"
    old = os.umask(0o022)
    try:
        write_private(path, "erste")
        write_private(path, "zweite")
    finally:
        os.umask(old)
    assert path.read_text(encoding="utf-8") == "zweite"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["session"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old content survives a write that cannot finish."""
    path = tmp_path / "feed.xml"
    replace_file(path, b"alt", mode=0o666)

    def full_disk(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError, match="No space"):
        replace_file(path, b"neu", mode=0o666)
    assert path.read_bytes() == b"alt"
    assert [p.name for p in tmp_path.iterdir()] == ["feed.xml"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T10:00:00Z", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01T10:00:00+0000", datetime(2024, 5, 1, 10, tzinfo=UTC)),  # Graph
        ("2024-05-01T12:00:00+02:00", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01T10:00:00", datetime(2024, 5, 1, 10, tzinfo=UTC)),  # no offset: UTC
    ],
)
def test_timestamps_are_aware_utc_instants(text: str, expected: datetime) -> None:
    """Every spelling the platforms use is the same instant, in UTC."""
    parsed = parse_time(text)
    assert parsed == expected
    assert parsed is not None
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("value", [None, "", "gestern", 1714557600, ["2024-05-01"]])
def test_anything_else_is_no_timestamp(value: object) -> None:
    assert parse_time(value) is None
