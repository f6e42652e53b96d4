"""Secrets and access: a planted token appears nowhere; files and URLs are guarded.

* The daemon runs with ``-vv`` against platforms that fail in every way, each
  error echoing the token back; the token is then looked for in every log line,
  every table of the database, every ``--json`` output and every error message.
* A token file readable by group or others is refused, with the ``chmod`` that
  fixes it; ``base_url`` and webhook URLs must be https unless the host is
  loopback or the account sets ``allow_insecure_http = true``.
* The database file (0660: the editors' group writes the queue) and the state
  folder (0700) are created with restrictive modes whatever the umask.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.commandline import CROSSPOST
from tests.fakes.harness import HARNESSES, Harness
from tests.fakes.mastodon import DEFAULT_TOKEN, MastodonFake
from tests.fakes.server import (
    FakeRequest,
    FakeResponse,
    FakeServer,
    delay,
    json_response,
    lose_response,
    rate_limit,
    reset,
    skip_without_spec,
    status,
)
from tests.reliability.conftest import (
    CI_PLATFORMS,
    FULL,
    SITE,
    Figures,
    Workspace,
    dump_database,
    harness_names,
    has_traceback,
    make_workspace,
)

HOOK_SECRET = "hook-secret-CANARY-5f2e9a1c7d"


def echo(code: int, secret: str) -> dict[str, Any]:
    """An error body that repeats the secret in every field a platform message is read from."""
    words = f"the credential {secret} is not accepted here"
    return {
        "ok": False,
        "error_code": code,
        "error": words,
        "error_description": words,
        "message": words,
        "description": words,
        "detail": words,
    }


class Receiver(FakeServer):
    """A webhook receiver that accepts every signed POST."""

    name = "webhook"

    def __init__(self) -> None:
        super().__init__()
        self.route("POST", "/hook", self._receive)

    def _receive(self, request: FakeRequest) -> FakeResponse:
        key = request.header("idempotency-key") or "x"
        return json_response({"id": key, "url": f"{self.url}/posts/{key}"})


@pytest.fixture(params=harness_names())
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    from crosspost.media import requires_media

    if requires_media(request.param):
        pytest.skip(f"{request.param} publishes only posts with images from the website")
    if not FULL and request.param not in CI_PLATFORMS:
        pytest.skip(f"{request.param}: in the long run (make reliability) only")
    with HARNESSES[request.param]() as h:
        yield h


def planted(h: Harness) -> list[str]:
    """The secret and its halves (a secret cut in two at a message's end is still out)."""
    token = h.token
    return [token, token[: len(token) // 2 + 1], token[len(token) // 2 :]]


def test_a_planted_token_appears_in_no_log_column_json_or_error(
    harness: Harness, tmp_path: Path, figures: Figures
) -> None:
    """Every failure a platform can give, each echoing the token: the daemon's -vv log,
    every database table, every --json output and every error message stay clean."""
    with Receiver() as receiver:
        ws = make_workspace(
            tmp_path,
            {
                "p": harness.account(),
                "hook": {
                    "platform": "webhook",
                    "url": f"{receiver.url}/hook",
                    "token_env": "CROSSPOST_TEST_HOOK_SECRET",
                },
                "website": {"platform": "feed", "path": str(tmp_path / "site")},
            },
            env={harness.token_env: harness.token, "CROSSPOST_TEST_HOOK_SECRET": HOOK_SECRET},
            daemon={"http_timeout": 1, "max_inline_wait": 5, "max_attempts": 3},
        )
        secrets = [*planted(harness), HOOK_SECRET]
        server = harness.server
        faults = [
            status(500, echo(500, harness.token)),
            status(503, echo(503, harness.token)),
            reset(),
            lose_response(),
            delay(1.5),
            rate_limit(1, echo(429, harness.token)),
            status(422, echo(400, harness.token)),
            status(400, echo(400, harness.token)),
        ]
        for fault in faults:
            server.inject(fault, route=harness.create_route)
        receiver.inject(status(500, echo(500, HOOK_SECRET)), route="POST /hook")
        receiver.inject(status(401, echo(401, HOOK_SECRET)), route="POST /hook")
        folder = tmp_path / "posts"
        folder.mkdir()
        for n in range(6):
            (folder / f"p{n}.md").write_text(
                f'+++\nlink = "{SITE}/geheim/{n}"\n+++\nBeitrag {n} über das Geheimnis\n'
            )
        posts = [p["id"] for p in ws.json("enqueue", *map(str, sorted(folder.iterdir())))]
        seen: list[str] = []
        once = ws.run("-vv", "daemon", "--once", check=False, timeout=120)
        seen += [once.stdout, once.stderr]
        # now the credential is refused, with the token in the refusal
        server.inject(status(401, echo(401, harness.token)), times=20)
        receiver.inject(status(401, echo(401, HOOK_SECRET)), times=20)
        for args in (
            ["-v", "accounts", "check", "--json"],
            ["-v", "accounts", "check"],
            ["-vv", "daemon", "--once"],
            ["retry", "--failed"],
            ["-vv", "daemon", "--once"],
            ["status"],
            ["list"],
            ["log"],
            ["show", "999"],
            ["show", str(posts[0])],
        ):
            result = ws.run(*args, check=False, timeout=120)
            seen += [result.stdout, result.stderr]
            assert not has_traceback(result.stdout + result.stderr), (args, result.stderr)
        for args in (
            ["list"],
            ["status"],
            ["log"],
            ["accounts"],
            ["show", str(posts[-1])],
        ):
            seen.append(ws.run(*args, "--json", check=False).stdout)
        seen.append(dump_database(tmp_path / "crosspost.db"))
        applied = [r.fault for r in server.requests + receiver.requests if r.fault]
    text = "\n".join(seen)
    assert "published" in text or "failed" in text  # the run did something worth checking
    for secret in secrets:
        assert secret not in text, f"{secret!r} leaked:\n" + "\n".join(
            line for line in text.splitlines() if secret in line
        )
    assert len(applied) >= len(faults) // 2, applied
    figures.add("secrets.outputs_checked", len(seen))
    figures.merge("secrets.faults_echoing_the_token", {harness.platform: len(applied)})


# -- token files ----------------------------------------------------------------------------------
@pytest.fixture
def mastodon(tmp_path: Path) -> Iterator[MastodonFake]:
    from tests.fakes.mastodon import SPEC_NAME

    skip_without_spec(SPEC_NAME)
    with MastodonFake() as fake:
        yield fake


def token_file_workspace(root: Path, url: str, token_file: Path, **extra: Any) -> Workspace:
    return make_workspace(
        root,
        {
            "mastodon": {
                "platform": "mastodon",
                "base_url": url,
                "token_file": str(token_file),
                **extra,
            }
        },
    )


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_token_file_readable_by_others_is_refused_with_the_fix(
    mastodon: MastodonFake, tmp_path: Path, mode: int
) -> None:
    """The daemon and `accounts check` refuse a token file group or others may read: exit 2,
    one line naming the file and the chmod that fixes it; nothing is published. After
    the chmod the same installation publishes."""
    token = tmp_path / "mastodon.token"
    token.write_text(DEFAULT_TOKEN + "\n")
    token.chmod(mode)
    ws = token_file_workspace(tmp_path / "ws", mastodon.url, token)
    ws.run("enqueue", "--text", "Geheim gehalten", "--link", f"{SITE}/token")
    for args in (["daemon", "--once"], ["daemon"]):
        result = ws.run(*args, check=False, timeout=60)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 2, result.stderr
        assert len(lines) == 1, result.stderr
        assert str(token) in lines[0]
        assert f"chmod 600 {token}" in lines[0]
    # accounts check reports every account in turn; this one fails, with the fix
    check = ws.run("accounts", "check", check=False)
    assert check.returncode == 1
    assert f"mastodon: FAILED: accounts.mastodon.token_file: {token}" in check.stdout
    assert f"chmod 600 {token}" in check.stdout
    assert mastodon.statuses == []
    token.chmod(0o600)
    assert ws.run("daemon", "--once", check=False).returncode == 0
    assert len(mastodon.statuses) == 1


def test_the_token_is_never_in_the_configuration(tmp_path: Path) -> None:
    """A `token` key in an account is refused as unknown: secrets never live in the TOML."""
    ws = make_workspace(
        tmp_path,
        {"m": {"platform": "mastodon", "base_url": "https://social.example", "token": "x"}},
        upgrade=False,
    )
    result = ws.run("status", check=False)
    assert result.returncode == 2
    assert "accounts.m.token: unknown key" in result.stderr


# -- https ----------------------------------------------------------------------------------------
@pytest.fixture
def reachable_mastodon() -> Iterator[MastodonFake]:
    """A Mastodon fake on 0.0.0.0: reachable, but not a loopback address by its name."""
    from tests.fakes.mastodon import SPEC_NAME

    skip_without_spec(SPEC_NAME)
    with MastodonFake(host="0.0.0.0") as fake:  # noqa: S104 - the test needs a non-loopback name
        yield fake


def test_plain_http_needs_a_loopback_host_or_explicit_permission(
    reachable_mastodon: MastodonFake, tmp_path: Path
) -> None:
    """http:// to a host that is not loopback is refused (exit 2, naming the key and the
    way out); with allow_insecure_http = true the same account publishes."""
    url = reachable_mastodon.url
    assert url.startswith("http://0.0.0.0:")
    env = {"CROSSPOST_TEST_MASTODON_TOKEN": DEFAULT_TOKEN}
    account = {
        "platform": "mastodon",
        "base_url": url,
        "token_env": "CROSSPOST_TEST_MASTODON_TOKEN",
    }
    refused = make_workspace(tmp_path / "refused", {"mastodon": account}, env=env, upgrade=False)
    for args in (["daemon", "--once"], ["status"], ["db", "upgrade"]):
        result = refused.run(*args, check=False)
        assert result.returncode == 2, result.stderr
        assert "accounts.mastodon.base_url: must use https" in result.stderr
        assert "allow_insecure_http = true" in result.stderr
    assert not (tmp_path / "refused" / "crosspost.db").exists()  # bad input writes nothing

    allowed = make_workspace(
        tmp_path / "allowed", {"mastodon": {**account, "allow_insecure_http": True}}, env=env
    )
    allowed.run("enqueue", "--text", "Über http, ausdrücklich erlaubt", "--link", f"{SITE}/http")
    assert allowed.run("daemon", "--once", check=False).returncode == 0
    assert len(reachable_mastodon.statuses) == 1


def test_a_webhook_url_follows_the_same_rule(tmp_path: Path) -> None:
    """A webhook's url over plain http to a non-loopback host is refused unless allowed."""
    hook = {"platform": "webhook", "url": "http://hooks.example/x", "token_env": "H"}
    ws = make_workspace(tmp_path / "a", {"hook": hook}, upgrade=False)
    result = ws.run("status", check=False)
    assert result.returncode == 2
    assert "accounts.hook.url: must use https" in result.stderr
    ok = make_workspace(tmp_path / "b", {"hook": {**hook, "allow_insecure_http": True}})
    assert ok.run("accounts", check=False).returncode == 0


# -- file modes -----------------------------------------------------------------------------------
def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o000])
def test_database_and_state_folder_are_created_private(tmp_path: Path, umask: int) -> None:
    """Whatever the umask: the database file and its -wal/-shm are 0660 (the editors' group,
    nobody else), its new folder 0770; the daemon's state folder and its sessions
    folder are 0700."""
    root = tmp_path / "install"
    ws = make_workspace(root, {"c": {"platform": "console"}}, upgrade=False)
    (root / "crosspost.toml").write_text(
        (root / "crosspost.toml")
        .read_text()
        .replace(f"sqlite:///{root}/crosspost.db", f"sqlite:///{root}/queue/crosspost.db")
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CROSSPOST, *args],
            cwd=root,
            env=ws.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            preexec_fn=lambda: os.umask(umask),  # only the umask, before exec
        )

    assert run("db", "upgrade").returncode == 0
    assert run("enqueue", "--text", "Modus", "--link", f"{SITE}/modus").returncode == 0
    result = run("daemon", "--once")
    assert result.returncode == 0, result.stderr
    db = root / "queue" / "crosspost.db"
    assert _mode(db.parent) & 0o007 == 0, oct(_mode(db.parent))
    for path in (db, db.with_name("crosspost.db-wal"), db.with_name("crosspost.db-shm")):
        if path.exists():
            assert _mode(path) & 0o007 == 0, f"{path.name}: {oct(_mode(path))}"
    assert _mode(db) == 0o660

    # the state folder, as an adapter that keeps sessions creates it
    from crosspost.adapters.base import build_adapter
    from crosspost.config import load_settings

    old = os.umask(umask)
    try:
        settings = load_settings(root / "crosspost.toml")
        sessions = build_adapter("c", settings).state_dir
    finally:
        os.umask(old)
    assert _mode(sessions) == 0o700
    assert _mode(sessions.parent) == 0o700


def test_the_queue_folder_lets_the_editors_group_write(tmp_path: Path) -> None:
    """The folder `db upgrade` creates for the SQLite file is 0770 under umask 022, so the
    editors' group can create the -wal and -shm files SQLite needs beside it."""
    root = tmp_path / "install"
    ws = make_workspace(root, {"c": {"platform": "console"}}, upgrade=False)
    config = root / "crosspost.toml"
    config.write_text(config.read_text().replace("/crosspost.db", "/queue/crosspost.db"))
    result = subprocess.run(
        [CROSSPOST, "db", "upgrade"],
        cwd=root,
        env=ws.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=lambda: os.umask(0o022),  # only the umask, before exec
    )
    assert result.returncode == 0, result.stderr
    assert _mode(root / "queue") == 0o770
