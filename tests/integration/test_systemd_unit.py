"""The systemd unit, sysusers and tmpfiles files in ``systemd/`` are valid and hardened.

These tests run systemd's own tools offline (no running systemd is needed;
systemd 252 on Debian 12 was used to write them). They need the Debian package
``systemd``, which ships ``systemd-analyze``, ``systemd-sysusers`` and
``systemd-tmpfiles``; without it they are skipped (``apt-get install -y systemd``).

What ``systemd-analyze verify`` sees is not the unit verbatim: it checks that
every ``ExecStart*=`` command exists and is executable, and
``/opt/crosspost/venv/bin/crosspost`` exists only on an installed server. The
test therefore copies the unit into a temporary directory and rewrites that one
path to an existing executable (``true``), keeping every argument and every other
line. ``User=crosspost`` needs no rewrite: verify does not resolve users.
``--man=no`` keeps verify from calling man(1) for ``Documentation=`` lines.
A canary test proves that verify does complain on this machine, so "no output"
really means "no finding".

``systemd-analyze security --offline=yes`` scores the unit file itself (it does
not care whether the binary exists). ``--threshold=N`` takes tenths (20 = 2.0)
and makes the command exit non-zero above it; the tests check both the exit
status and the parsed "Overall exposure level" line.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from crosspost.config import DaemonConfig

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "crosspost.service"
SYSUSERS = ROOT / "systemd" / "crosspost.sysusers"
TMPFILES = ROOT / "systemd" / "crosspost.tmpfiles"
INSTALLED_BINARY = "/opt/crosspost/venv/bin/crosspost"
MAX_EXPOSURE = 2.0

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
pytestmark = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None,
    reason="systemd-analyze not found; install the Debian package 'systemd'",
)
# Plain, uncoloured, unpaged output whatever the terminal.
ENV = {**os.environ, "SYSTEMD_COLORS": "0", "SYSTEMD_PAGER": "", "LC_ALL": "C.UTF-8"}


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, env=ENV, timeout=60, check=False
    )


def analyze(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze ARGS`` (the module is skipped where it is missing)."""
    assert SYSTEMD_ANALYZE is not None
    return run(SYSTEMD_ANALYZE, *args)


def unit_settings(text: str) -> dict[str, list[str]]:
    """Every ``Key=value`` of a unit file, in order; keys may repeat."""
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def timespan_seconds(value: str) -> float:
    units = {"": 1, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value):
        total += float(number) * units[unit]
    return total


@pytest.fixture
def verifiable_unit(tmp_path: Path) -> Path:
    """A copy of the unit whose crosspost binary is replaced by ``true``."""
    text = UNIT.read_text(encoding="utf-8")
    assert text.count(INSTALLED_BINARY) >= 2, "ExecStartPre= and ExecStart= must run the venv"
    true = shutil.which("true")
    assert true is not None
    copy = tmp_path / UNIT.name
    copy.write_text(text.replace(INSTALLED_BINARY, true), encoding="utf-8")
    return copy


def test_verify_reports_nothing(verifiable_unit: Path) -> None:
    """systemd-analyze verify finds no fault in the unit (binary path rewritten)."""
    result = analyze("verify", "--man=no", verifiable_unit)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_verify_of_the_original_only_misses_the_installed_binary() -> None:
    """Unrewritten, the only findings are the not-yet-installed venv binary."""
    result = analyze("verify", "--man=no", UNIT)
    lines = (result.stdout + result.stderr).splitlines()
    if Path(INSTALLED_BINARY).exists():
        assert lines == []
    else:
        assert lines, "verify should notice the missing binary"
        assert all(f"{INSTALLED_BINARY} is not executable" in line for line in lines), lines


def test_verify_does_complain_on_this_machine(verifiable_unit: Path) -> None:
    """Canary: a misspelt directive is reported, so silence above means something."""
    broken = verifiable_unit.read_text(encoding="utf-8").replace(
        "ProtectHome=yes", "ProtectHomee=yes"
    )
    verifiable_unit.write_text(broken, encoding="utf-8")
    result = analyze("verify", "--man=no", verifiable_unit)
    assert "ProtectHomee" in result.stdout + result.stderr


def exposure(unit: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    threshold = str(round(MAX_EXPOSURE * 10))
    result = analyze("security", "--offline=yes", f"--threshold={threshold}", "--no-pager", unit)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, f"no exposure line in:\n{result.stdout}\n{result.stderr}"
    return float(match.group(1)), result


def test_security_exposure_is_at_most_2() -> None:
    """systemd-analyze security rates the sandbox 2.0 or better, exiting 0 at --threshold=20."""
    level, result = exposure(UNIT)
    assert level <= MAX_EXPOSURE, result.stdout
    assert result.returncode == 0, result.stderr


def test_security_check_fails_an_unhardened_unit(tmp_path: Path) -> None:
    """Canary: the same check rejects a unit without the sandbox lines."""
    bare = tmp_path / "bare.service"
    bare.write_text("[Service]\nType=notify\nExecStart=/bin/true\nUser=crosspost\n")
    level, result = exposure(bare)
    assert level > MAX_EXPOSURE
    assert result.returncode != 0


def test_sandbox_keeps_what_the_daemon_needs() -> None:
    """Readiness, watchdog, graceful stop, shared group, network and the queue directory."""
    s = unit_settings(UNIT.read_text(encoding="utf-8"))
    assert s["Type"] == ["notify"]
    assert s["NotifyAccess"] == ["main"]
    assert timespan_seconds(s["WatchdogSec"][0]) > 0
    assert s["KillSignal"] == ["SIGTERM"]
    assert s["Restart"] == ["on-failure"]
    # A stop must outlast one lease plus one HTTP request, or systemd kills mid-publish.
    defaults = DaemonConfig()
    assert timespan_seconds(s["TimeoutStopSec"][0]) >= defaults.lease_seconds + (
        defaults.http_timeout
    )
    assert s["User"] == s["Group"] == ["crosspost"]
    assert s["StateDirectory"] == ["crosspost"]
    assert s["StateDirectoryMode"] == ["2770"]
    assert s["UMask"] == ["0007"]
    assert s["WorkingDirectory"] == ["/var/lib/crosspost"]
    assert set(s["RestrictAddressFamilies"][0].split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    assert "PrivateNetwork" not in s
    assert s["ExecStartPre"][0].endswith(" db upgrade")
    assert s["ExecStart"][0].endswith(" daemon")


def test_sysusers_creates_the_crosspost_user_and_group(tmp_path: Path) -> None:
    """systemd-sysusers creates a system user crosspost with its own group."""
    sysusers = shutil.which("systemd-sysusers")
    if sysusers is None:
        pytest.skip("systemd-sysusers not found; install the Debian package 'systemd'")
    (tmp_path / "etc").mkdir()
    result = subprocess.run(
        [sysusers, f"--root={tmp_path}", "-"],
        input=SYSUSERS.read_text(encoding="utf-8"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    passwd = (tmp_path / "etc/passwd").read_text().splitlines()
    group = (tmp_path / "etc/group").read_text().splitlines()
    [user] = [line.split(":") for line in passwd if line.startswith("crosspost:")]
    [grp] = [line.split(":") for line in group if line.startswith("crosspost:")]
    assert int(user[2]) < 1000, "a system user"
    assert user[3] == grp[2], "primary group is crosspost"
    assert user[6] == "/usr/sbin/nologin"


@pytest.mark.skipif(os.geteuid() != 0, reason="systemd-tmpfiles must run as root to chown")
def test_tmpfiles_create_private_credentials_and_shared_queue(tmp_path: Path) -> None:
    """Credentials are root-only; the queue directory is setgid crosspost, 2770."""
    tools = [shutil.which("systemd-sysusers"), shutil.which("systemd-tmpfiles")]
    if None in tools:
        pytest.skip("systemd-sysusers/tmpfiles not found; install the Debian package 'systemd'")
    sysusers, tmpfiles = (str(t) for t in tools)
    (tmp_path / "etc").mkdir()
    for tool, conf in ((sysusers, SYSUSERS), (tmpfiles, TMPFILES)):
        args = [tool, f"--root={tmp_path}", *(["--create"] if tool == tmpfiles else []), "-"]
        result = subprocess.run(
            args, input=conf.read_text(), capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr
    gid = next(
        int(line.split(":")[2])
        for line in (tmp_path / "etc/group").read_text().splitlines()
        if line.startswith("crosspost:")
    )

    def owner_mode(path: str) -> tuple[int, int, str]:
        st = (tmp_path / path).stat()
        return st.st_uid, st.st_gid, oct(st.st_mode & 0o7777)

    assert owner_mode("etc/crosspost") == (0, gid, "0o750")
    assert owner_mode("etc/crosspost/credentials") == (0, 0, "0o700")
    assert owner_mode("var/lib/crosspost")[1:] == (gid, "0o2770")


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory other uids can reach (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="crosspost-privusers-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


WRITE_QUEUE = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("PRAGMA journal_mode=WAL")
db.execute("CREATE TABLE IF NOT EXISTS t(who)")
db.execute("INSERT INTO t VALUES (?)", (sys.argv[2],))
db.commit()
print(sorted(w for (w,) in db.execute("SELECT who FROM t")))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch uids")
def test_private_users_keep_group_write_to_the_queue(shared_dir: Path) -> None:
    """PrivateUsers=yes does not break group write to the SQLite queue and its WAL.

    Simulates the sandbox: the "daemon" runs in a user namespace in which only
    its own uid and gid are mapped (what PrivateUsers=yes does, apart from
    root), the "editor" is another uid in the same group. Both write a 0660
    database in a 2770 directory; an editor's file shows up as owned by
    "nobody" inside the namespace, but the kernel checks the real group.
    """
    setpriv, unshare = shutil.which("setpriv"), shutil.which("unshare")
    if setpriv is None or unshare is None:
        pytest.skip("setpriv/unshare not found; install the Debian package 'util-linux'")
    daemon, editor, group = 61990, 61991, 61990  # unused ids, no passwd entry needed
    queue = shared_dir / "queue"
    queue.mkdir()
    os.chown(queue, daemon, group)
    queue.chmod(0o2770)
    db = queue / "crosspost.db"

    as_editor = [setpriv, f"--reuid={editor}", f"--regid={editor}", f"--groups={group}"]
    as_daemon = [
        setpriv, f"--reuid={daemon}", f"--regid={group}", "--clear-groups",
        unshare, "--user", f"--map-user={daemon}", f"--map-group={group}",
    ]  # fmt: skip
    # The test's own interpreter may live where other uids cannot reach it
    # (e.g. pyenv under /root); the script needs only the standard library.
    for interpreter in (sys.executable, shutil.which("python3", path="/usr/bin:/bin")):
        probe = subprocess.run(
            [*as_daemon, str(interpreter), "-I", "-c", "import sqlite3"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if interpreter and probe.returncode == 0:
            break
    else:
        pytest.skip(f"cannot run Python in a user namespace here: {probe.stderr.strip()}")

    # The queue file is 0660 (what the store must create under UMask=0007);
    # SQLite gives its -wal and -shm files the database file's mode.
    os.close(os.open(db, os.O_CREAT | os.O_WRONLY, 0o660))
    os.chown(db, editor, group)
    db.chmod(0o660)
    python = [str(interpreter), "-I", "-c", WRITE_QUEUE, str(db)]
    for who, prefix in (("editor", as_editor), ("daemon", as_daemon), ("editor2", as_editor)):
        result = subprocess.run(
            [*prefix, *python, who], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, f"{who}: {result.stderr}"
    assert result.stdout.strip() == "['daemon', 'editor', 'editor2']"
