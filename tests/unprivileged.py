"""Permission tests that also run as root (CI runs as root).

Root passes every permission check through the capabilities CAP_DAC_OVERRIDE and
CAP_DAC_READ_SEARCH. Under root, a test marked with :func:`without_file_powers`
runs again in a child pytest whose capability bounding set lacks both (util-linux
``setpriv``): there root is an ordinary owner, and a file of mode 0 is unreadable.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec

import pytest

P = ParamSpec("P")

ROOT = Path(__file__).resolve().parent.parent
#: set in the child (not CROSSPOST_*: the unit tests' hermetic fixture removes those)
_CHILD = "TESTS_WITHOUT_FILE_POWERS"
_DAC_OVERRIDE, _DAC_READ_SEARCH = 1, 2  # capability numbers (linux/capability.h)


def has_file_powers() -> bool:
    """Whether this process may bypass file permissions (root with its capabilities)."""
    if os.geteuid() != 0:
        return False
    try:
        status = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:
        return True
    effective = next(
        (int(line.split()[1], 16) for line in status.splitlines() if line.startswith("CapEff:")),
        -1,
    )
    return bool(effective & (1 << _DAC_OVERRIDE | 1 << _DAC_READ_SEARCH))


def without_file_powers(test: Callable[P, None]) -> Callable[P, None]:
    """Run ``test`` without root's power over file permissions."""

    @functools.wraps(test)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        if not has_file_powers():
            return test(*args, **kwargs)
        if os.environ.get(_CHILD):
            pytest.fail("setpriv did not take root's powers over file permissions")
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root and util-linux setpriv is missing to drop root's powers")
        node = os.environ["PYTEST_CURRENT_TEST"].rsplit(" ", 1)[0]
        drop = "--bounding-set=-dac_override,-dac_read_search"
        pytest_command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", node]
        result = subprocess.run(
            [setpriv, drop, "--", *pytest_command],
            cwd=ROOT,
            env={**os.environ, _CHILD: "1"},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, f"{node} without root's powers:\n{result.stdout}"
        assert " passed" in result.stdout, result.stdout
        assert "skipped" not in result.stdout, result.stdout
        return None

    return wrapper
