"""The files adapters read and write: a post's images, session files, the feed's pages.

An image that cannot be read fails its delivery for good before anything is sent:
trying again will not make it readable. Every file an adapter writes replaces the old
one atomically (a temporary file in the same folder, fsync, ``os.replace``, fsync of
the folder), so that a reader or a crash sees the old or the new file, never a mix.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from crosspost.exceptions import Rejected
from crosspost.i18n import _

if TYPE_CHECKING:
    from crosspost.models import Media


async def read_image(media: Media) -> bytes:
    """The image's bytes (read off the event loop); Rejected, unsent, when unreadable."""
    try:
        return await asyncio.to_thread(media.path.read_bytes)
    except OSError as exc:
        raise Rejected(
            _("{path}: cannot read the image: {reason}").format(
                path=media.path, reason=exc.strerror or exc
            ),
            sent=False,
        ) from exc


def replace_file(path: Path, data: bytes, *, mode: int) -> None:
    """Replace ``path`` with ``data`` atomically; a new file gets ``mode`` (minus the umask)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with ``text``, readable by the owner only (a secret)."""
    replace_file(path, text.encode("utf-8"), mode=0o600)


def fsync_folder(folder: Path) -> None:
    """Make the folder's entries (a rename, a new file) durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
