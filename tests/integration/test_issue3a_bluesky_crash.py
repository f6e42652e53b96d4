"""Issue 3 (Bluesky on the real PDS): a REAL crash between ``createRecord`` and recording
its result makes no second record.

Not a simulation: the installed ``crosspost daemon`` runs in a subprocess against the
real PDS (``@atproto/dev-env``, through :class:`~tests.fakes.bluesky.BlueskyProxy`). The
proxy lets ``createRecord`` reach the PDS — the record exists — and holds the answer
back; the test then SIGKILLs the daemon, so the result is never recorded. A new daemon
process takes the delivery over: it must find the record under the record key that was
checkpointed before the call (``getRecord``) and never send ``createRecord`` again.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.fakes.bluesky import CREATE_RECORD, GET_RECORD, BlueskyProxy, Pds
from tests.fakes.fixtures import assert_clean
from tests.fakes.server import FakeRequest, FakeResponse
from tests.reliability.conftest import Workspace, clean_env, config_text

TOKEN_ENV = "CROSSPOST_TEST_BLUESKY_APP_PASSWORD"
SITE = "https://www.zv-staedtedreieck.de"


class HoldingProxy(BlueskyProxy):
    """Forwards as usual; the first createRecord lands on the PDS, then its answer waits
    until :attr:`released` (the client is killed meanwhile)."""

    def __init__(self, pds: Pds) -> None:
        super().__init__(pds)
        self.landed = threading.Event()
        self.released = threading.Event()

    def _forward(self, request: FakeRequest) -> FakeResponse:
        response = super()._forward(request)
        if request.route == CREATE_RECORD and not self.landed.is_set():
            self.landed.set()
            self.released.wait(60)
        return response


@pytest.fixture
def holding_proxy(pds: Pds) -> Iterator[HoldingProxy]:
    with HoldingProxy(pds) as server:
        try:
            yield server
        finally:
            server.released.set()
    assert_clean(server)


@pytest.fixture
def workspace(tmp_path: Path, pds: Pds, holding_proxy: HoldingProxy) -> Iterator[Workspace]:
    name = f"crash-{os.getpid()}-{tmp_path.name}"
    secret = pds.create_app_password(name)
    account: dict[str, Any] = {
        "platform": "bluesky",
        "base_url": holding_proxy.url,
        "handle": pds.handle,
        "token_env": TOKEN_ENV,
    }
    config = tmp_path / "crosspost.toml"
    # http_timeout 10 (ample for a busy PDS): a request of a killed daemon can land up to
    # 2 x 10 s later, so the new daemon looks 20 s after the crashed attempt began
    # (with the default 30 s timeout it would wait a minute)
    daemon = {"http_timeout": 10}
    config.write_text(config_text(tmp_path, {"bsky": account}, daemon=daemon), "utf-8")
    ws = Workspace(tmp_path, clean_env(CROSSPOST_CONFIG=str(config), **{TOKEN_ENV: secret}))
    ws.run("db", "upgrade")
    try:
        yield ws
    finally:
        ws.stop_all()
        pds.revoke_app_password(name)


def test_sigkill_after_create_record_landed_then_restart_makes_no_second_record(
    pds: Pds, holding_proxy: HoldingProxy, workspace: Workspace, tmp_path: Path
) -> None:
    """The daemon is SIGKILLed while the PDS has created the record and the answer is on
    its way: the restarted daemon finds the record by its checkpointed key, records it as
    published and sends no second createRecord — one record on the PDS."""
    link = f"{SITE}/aktuelles/absturz-{os.getpid()}-{tmp_path.name}"
    text = "Grüße aus dem Städtedreieck 🎄 – dieser Beitrag darf nur einmal erscheinen."
    [queued] = workspace.json("enqueue", "--text", text, "--link", link, "--to", "bsky")
    post = str(queued["id"])

    first = workspace.start_daemon(log=tmp_path / "daemon-1.log")
    assert holding_proxy.landed.wait(60), (tmp_path / "daemon-1.log").read_text()
    [landed] = [r for r in pds.records() if link in r["value"]["text"]]
    first.send_signal(signal.SIGKILL)
    assert first.wait(timeout=10) == -signal.SIGKILL
    holding_proxy.released.set()  # the answer now goes to a dead socket
    shown = workspace.json("show", post)
    assert shown["deliveries"][0]["state"] == "publishing"  # the result was never recorded
    assert shown["deliveries"][0]["remote_id"] is None

    second = workspace.start_daemon(log=tmp_path / "daemon-2.log")
    workspace.wait_until(
        lambda: workspace.json("show", post)["deliveries"][0]["state"] == "published",
        timeout=90,
        what="the restarted daemon to settle the delivery",
    )
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=30) == 0, (tmp_path / "daemon-2.log").read_text()

    shown = workspace.json("show", post)
    delivery = shown["deliveries"][0]
    assert delivery["state"] == "published"
    assert delivery["remote_id"] == landed["uri"]
    outcomes = [a["outcome"] for a in shown["attempts"]]
    assert outcomes[0] == "crashed", outcomes
    assert outcomes[-1] == "found", outcomes
    assert [r for r in pds.records() if link in r["value"]["text"]] == [landed]
    assert len(holding_proxy.requests_to(CREATE_RECORD)) == 1
    assert len(holding_proxy.requests_to(GET_RECORD)) >= 1
