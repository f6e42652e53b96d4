"""The installed ``crosspost`` command in subprocesses, for the acceptance and reliability
workspaces (each a dataclass with ``root``, ``env`` and ``processes``)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

CROSSPOST = str(Path(sys.executable).with_name("crosspost"))


class CommandLine:
    """Runs ``crosspost`` in ``root`` with ``env`` and keeps the daemons it starts."""

    root: Path
    env: dict[str, str]
    processes: list[subprocess.Popen[str]]

    def run(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 60,
        preexec_fn: Callable[[], None] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [CROSSPOST, *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            preexec_fn=preexec_fn,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"crosspost {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)

    def early_exit(self, process: subprocess.Popen[str]) -> str:
        """What to say when a daemon started here exited before it was ready."""
        return f"the daemon exited early ({process.returncode})"

    def wait_until(self, predicate: Any, timeout: float = 30.0, what: str = "condition") -> None:
        """Poll ``predicate`` (bounded), failing the test with ``what`` on timeout."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(0.05)

    def wait_ready(self, process: subprocess.Popen[str], timeout: float = 30.0) -> None:
        """A daemon is ready once it has written its heartbeat with its pid."""

        def ready() -> bool:
            assert process.poll() is None, self.early_exit(process)
            return any(d["pid"] == process.pid for d in self.json("status")["daemons"])

        self.wait_until(ready, timeout, "the daemon to start")

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
