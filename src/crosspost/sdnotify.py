"""systemd's notify protocol, written to ``$NOTIFY_SOCKET`` directly (no dependency)."""

from __future__ import annotations

import os
import socket


def notify(message: str) -> bool:
    """Send ``READY=1``, ``WATCHDOG=1``, ``STOPPING=1``, ``STATUS=…``; False outside systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode("utf-8"))
    except OSError:
        return False
    return True


def watchdog_interval() -> float | None:
    """Half of ``WatchdogSec=`` in seconds, if systemd asked for pings to this process."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return max(0.5, int(usec) / 2_000_000)
    except ValueError:
        return None
