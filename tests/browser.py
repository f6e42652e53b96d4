"""A real browser for the tests: headless Chromium driven over the DevTools protocol.

Chromium (Debian's ``chromium``, installed by ``.ci/run``) runs with
``--remote-debugging-pipe``: commands go in on its file descriptor 3, answers and
events come out on 4, each a JSON object ended by a NUL byte. No extra Python
package and no network port are needed. :func:`open_page` loads one local page
and reports what a person's browser would have shown or done: console messages
and uncaught errors, every request the page made, and a full-page screenshot.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
TIMEOUT = 60.0


def find_browser() -> str | None:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def require_browser() -> str:
    found = find_browser()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("no Chromium on this machine: .ci/run installs Debian's chromium")
        pytest.skip("no Chromium here (apt-get install chromium)")
    return found


@dataclass
class PageReport:
    #: console messages of level error or warning, and uncaught exceptions
    problems: list[str] = field(default_factory=list)
    #: every URL the page requested (the page itself included)
    requests: list[str] = field(default_factory=list)
    #: the answers of the page-side checks (see :data:`CHECKS`)
    checks: dict[str, Any] = field(default_factory=dict)
    screenshot: Path | None = None


#: evaluated in the page after it loaded; the results land in ``PageReport.checks``
CHECKS = """(() => ({
  lang: document.documentElement.lang,
  title: document.title,
  h1: document.querySelectorAll('h1').length,
  headings: [...document.querySelectorAll('h1,h2,h3')].map(h => h.textContent.trim()),
  imagesWithoutAlt: [...document.images].filter(i => !i.hasAttribute('alt')).length,
  images: document.images.length,
  brokenImages: [...document.images].filter(i => !i.complete || !i.naturalWidth).length,
  svgs: document.querySelectorAll('svg').length,
  unlabelledSvgs: [...document.querySelectorAll('svg')]
    .filter(s => !s.getAttribute('aria-label') && s.getAttribute('aria-hidden') !== 'true')
    .length,
  scripts: document.querySelectorAll('script').length,
  height: document.documentElement.scrollHeight,
}))()"""


class _Pipe:
    def __init__(self, proc: subprocess.Popen[bytes], write_fd: int, read_fd: int) -> None:
        self.proc = proc
        self.write_fd = write_fd
        self.read_fd = read_fd
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.write_fd, json.dumps(message).encode() + b"\0")
        wanted = self.next_id
        while True:
            answer = self._read()
            if answer.get("id") == wanted:
                if "error" in answer:
                    raise AssertionError(f"{method}: {answer['error']}")
                result: dict[str, Any] = answer.get("result", {})
                return result
            self.events.append(answer)

    def wait_for(self, method: str) -> dict[str, Any]:
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._read()
            self.events.append(event)
            if event.get("method") == method:
                return event

    def _read(self) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("the browser did not answer in time")
            ready, _w, _x = select.select([self.read_fd], [], [], left)
            if ready:
                chunk = os.read(self.read_fd, 1 << 20)
                if not chunk:
                    raise AssertionError("the browser closed its pipe")
                self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message


def open_page(page: Path, screenshot: Path, *, width: int = 1280) -> PageReport:
    """Load ``page`` in headless Chromium; what it showed, requested and logged."""
    browser = require_browser()
    commands_r, commands_w = os.pipe()
    answers_r, answers_w = os.pipe()

    def wire() -> None:
        # move both ends above 4 first: one of them may sit on 3 or 4 already
        high_r = fcntl.fcntl(commands_r, fcntl.F_DUPFD, 10)
        high_w = fcntl.fcntl(answers_w, fcntl.F_DUPFD, 10)
        os.dup2(high_r, 3)
        os.dup2(high_w, 4)

    profile = tempfile.mkdtemp(prefix="crosspost-browser-")
    proc = subprocess.Popen(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--remote-debugging-pipe",
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=wire,  # the pipe must sit on fds 3 and 4 of the child
        close_fds=False,
    )
    os.close(commands_r)
    os.close(answers_w)
    pipe = _Pipe(proc, commands_w, answers_r)
    report = PageReport()
    try:
        target = pipe.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            pipe.send(f"{domain}.enable", session=session)
        pipe.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        pipe.events.clear()
        pipe.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
        pipe.wait_for("Page.loadEventFired")
        checks = pipe.send(
            "Runtime.evaluate", {"expression": CHECKS, "returnByValue": True}, session=session
        )
        report.checks = checks["result"]["value"]
        height = min(int(report.checks.get("height") or 900), 16000)
        pipe.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        shot = pipe.send("Page.captureScreenshot", {"format": "png"}, session=session)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        report.screenshot = screenshot
        for event in pipe.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Network.requestWillBeSent":
                report.requests.append(params["request"]["url"])
            elif method == "Runtime.consoleAPICalled" and params.get("type") in (
                "error",
                "warning",
                "assert",
            ):
                report.problems.append(f"console.{params['type']}: {params.get('args')}")
            elif method == "Runtime.exceptionThrown":
                report.problems.append(f"exception: {params.get('exceptionDetails')}")
            elif method == "Log.entryAdded" and params["entry"].get("level") in (
                "error",
                "warning",
            ):
                entry = params["entry"]
                report.problems.append(
                    f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}"
                )
        # no answer is awaited: the browser closes its end of the pipe as it exits
        os.write(commands_w, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
    finally:
        os.close(commands_w)
        os.close(answers_r)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
    return report
