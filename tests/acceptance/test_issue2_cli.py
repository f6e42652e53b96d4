"""Issue 2 (walking skeleton) with the installed ``crosspost`` command: the promises no
other acceptance test pins down, on SQLite and on PostgreSQL (the ``workspace`` fixture).

* ``preview`` says that a repeated autumn wall time is taken as its first occurrence;
* the CLI and the daemon refuse an outdated schema with exit 2, naming ``db upgrade``;
* ``log --follow`` prints attempts as they finish;
* ``accounts check`` verifies the Mastodon credential with ``verify_credentials``;
* a post without its own link carries the site's address, also in the feed;
* bad post files (image without alt, unknown account or category, too long) exit 2,
  one line naming the field and the fix, nothing written.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import threading
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from tests.acceptance.conftest import SITE, Workspace, downgrade
from tests.commandline import CROSSPOST
from tests.fakes.mastodon import MastodonFake
from tests.fakes.server import status as fault_status

pytestmark = pytest.mark.acceptance

ATOM = "{http://www.w3.org/2005/Atom}"
TWICE = "occurs twice in Europe/Berlin (daylight saving time ends); the first occurrence is used"


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


# -- times ------------------------------------------------------------------------------------


def test_preview_says_a_repeated_autumn_time_is_taken_as_its_first_occurrence(
    workspace: Workspace,
) -> None:
    """2027-10-31 02:30 happens twice in Berlin: `preview FILE` and `preview ID` say the
    first (CEST, 00:30 UTC) is used, and it is what is stored; an hour later is plain."""
    posts = workspace.root / "posts"
    posts.mkdir()
    twice = posts / "zweimal.md"
    twice.write_text(
        f'+++\nlink = "{SITE}/a"\npublish_at = 2027-10-31T02:30:00\n+++\nZweimal?\n',
        encoding="utf-8",
    )
    plain = posts / "einmal.md"
    plain.write_text(
        f'+++\nlink = "{SITE}/b"\npublish_at = 2027-10-31T03:30:00\n+++\nEinmal.\n',
        encoding="utf-8",
    )

    shown = workspace.run("preview", str(twice)).stdout
    assert f"note: 2027-10-31 02:30 CEST {TWICE}" in shown
    assert {r["due_at"] for r in workspace.json("preview", str(twice))} == {"2027-10-31T00:30:00Z"}
    assert TWICE not in workspace.run("preview", str(plain)).stdout

    enqueued = workspace.run("enqueue", str(twice)).stdout
    assert TWICE in enqueued
    post = workspace.json("list")[0]["id"]
    assert workspace.json("show", str(post))["publish_at"] == "2027-10-31T00:30:00Z"
    assert f"note: 2027-10-31 02:30 CEST {TWICE}" in workspace.run("preview", str(post)).stdout

    # the same wall time from the command line; the second occurrence only with its offset
    first = workspace.json("enqueue", "--text", "Erstes", "--at", "2027-10-31 02:30")[0]["id"]
    second = workspace.json("enqueue", "--text", "Zweites", "--at", "2027-10-31T02:30:00+01:00")
    assert workspace.json("show", str(first))["publish_at"] == "2027-10-31T00:30:00Z"
    assert workspace.json("show", str(second[0]["id"]))["publish_at"] == "2027-10-31T01:30:00Z"
    assert TWICE in workspace.run("preview", str(first)).stdout
    assert TWICE not in workspace.run("preview", str(second[0]["id"])).stdout


def test_preview_says_a_past_time_is_published_as_soon_as_possible(workspace: Workspace) -> None:
    past = workspace.root / "vorbei.md"
    past.write_text(f'+++\nlink = "{SITE}/c"\npublish_at = 2020-01-01T09:00:00\n+++\nVorbei.\n')
    shown = workspace.run("preview", str(past)).stdout
    assert "2020-01-01 09:00 CET is in the past: published as soon as possible" in shown


def test_a_wall_time_in_the_spring_gap_is_refused(workspace: Workspace) -> None:
    gap = workspace.root / "luecke.md"
    gap.write_text(f'+++\nlink = "{SITE}/d"\npublish_at = 2027-03-28T02:30:00\n+++\nNie.\n')
    before = workspace.fingerprint()
    for args in (["enqueue", str(gap)], ["enqueue", "--text", "Nie", "--at", "2027-03-28 02:30"]):
        result = workspace.run(*args, check=False)
        assert result.returncode == 2
        line = one_error_line(result)
        assert "02:30" in line
        assert "does not exist" in line
    assert workspace.fingerprint() == before


# -- the schema -------------------------------------------------------------------------------


def test_an_outdated_schema_is_refused_by_the_cli_and_the_daemon(workspace: Workspace) -> None:
    """One revision behind: every command that uses the queue, `daemon --once` and the
    daemon exit 2 with one line naming `crosspost db upgrade`, and write nothing;
    after `db upgrade` they work."""
    downgrade(workspace.database_url, "0001")
    before = workspace.fingerprint()
    for args in (
        ["list"],
        ["status"],
        ["show", "1"],
        ["log"],
        ["enqueue", "--text", "Hallo", "--link", f"{SITE}/e"],
        ["daemon", "--once"],
        ["daemon"],
    ):
        result = workspace.run(*args, check=False)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert "crosspost db upgrade" in one_error_line(result), args
        assert workspace.fingerprint() == before, args
    workspace.run("db", "upgrade")
    assert workspace.json("list") == []
    assert workspace.run("daemon", "--once", check=False).returncode == 0


# -- log --follow -----------------------------------------------------------------------------


def test_log_follow_prints_attempts_as_they_finish(
    workspace: Workspace, mastodon: MastodonFake
) -> None:
    """`log --follow --json` prints what was there, then each attempt once it finishes
    (one JSON object per line), until interrupted (exit 0)."""
    first = workspace.json("enqueue", "--text", "Erster", "--link", f"{SITE}/f1")[0]["id"]
    assert workspace.run("daemon", "--once", check=False).returncode == 0
    follower = subprocess.Popen(
        [CROSSPOST, "log", "--follow", "--json"],
        cwd=workspace.root,
        env=workspace.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    workspace.processes.append(follower)
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert follower.stdout is not None
        for line in follower.stdout:
            lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def attempts_of(post: int, count: int) -> list[dict[str, Any]]:
        """Lines read until ``count`` attempts of ``post`` arrived (bounded wait)."""
        found: list[dict[str, Any]] = []
        while len(found) < count:
            record = json.loads(lines.get(timeout=30))
            if record["post"] == post:
                found.append(record)
        return found

    old = attempts_of(first, 2)  # mastodon and website, printed at start
    assert {(a["account"], a["outcome"]) for a in old} == {
        ("mastodon", "published"),
        ("website", "published"),
    }
    second = workspace.json("enqueue", "--text", "Zweiter", "--link", f"{SITE}/f2")[0]["id"]
    assert workspace.run("daemon", "--once", check=False).returncode == 0
    new = attempts_of(second, 2)
    assert {(a["account"], a["outcome"]) for a in new} == {
        ("mastodon", "published"),
        ("website", "published"),
    }
    follower.send_signal(signal.SIGINT)
    assert follower.wait(timeout=30) == 0
    reader.join(timeout=10)
    assert lines.empty()  # nothing printed twice


# -- accounts check ---------------------------------------------------------------------------


def test_accounts_check_verifies_the_credential_on_the_platform(
    workspace: Workspace, mastodon: MastodonFake
) -> None:
    """`accounts check` asks Mastodon's verify_credentials with the token and names the
    account; a revoked token exits 1 naming the account, without the token."""
    listed = workspace.json("accounts")
    assert [(a["account"], a["platform"]) for a in listed] == [
        ("mastodon", "mastodon"),
        ("website", "feed"),
    ]
    ok = workspace.run("accounts", "check")
    assert "mastodon: OK" in ok.stdout
    checks = {c["account"]: c for c in workspace.json("accounts", "check")}
    assert checks["mastodon"]["ok"] is True
    assert checks["website"]["ok"] is True
    verified = mastodon.requests_to("GET /api/v1/accounts/verify_credentials")
    assert len(verified) == 2
    assert all(r.header("authorization") == f"Bearer {mastodon.token}" for r in verified)

    workspace.env["CROSSPOST_TEST_MASTODON_TOKEN"] = "revoked-token-4711"
    refused = workspace.run("accounts", "check", check=False)
    assert refused.returncode == 1
    assert "mastodon: FAILED" in refused.stdout
    assert "website: OK" in refused.stdout
    assert "revoked-token-4711" not in refused.stdout + refused.stderr


# -- the canonical link -----------------------------------------------------------------------


def test_a_post_without_its_own_link_carries_the_site_address_everywhere(
    workspace: Workspace, mastodon: MastodonFake
) -> None:
    """No `link`: the site's address is appended on Mastodon and is the link of the
    feed entry and of the archive page (never an empty link)."""
    post = workspace.json("enqueue", "--text", "Ohne eigenen Link")[0]["id"]
    assert workspace.run("daemon", "--once", check=False).returncode == 0
    [status] = mastodon.statuses
    assert status.text == f"Ohne eigenen Link\n\n{SITE}"
    feed = ET.parse(workspace.root / "site" / "feed.xml").getroot()
    [entry] = list(feed.iter(f"{ATOM}entry"))
    [alternate] = [x for x in entry.iter(f"{ATOM}link") if x.get("rel") == "alternate"]
    assert alternate.get("href") == SITE
    page = (workspace.root / "site" / "posts" / f"{post}.html").read_text(encoding="utf-8")
    assert f'<link rel="canonical" href="{SITE}">' in page
    # the stored post names it too: SPEC "link defaults to site.url"
    assert workspace.json("show", str(post))["link"] == SITE
    assert [p["link"] for p in workspace.json("list")] == [SITE]


# -- the attempt log --------------------------------------------------------------------------


def test_every_attempt_records_the_platforms_http_status(
    workspace: Workspace, mastodon: MastodonFake
) -> None:
    """An attempt row keeps the HTTP status of the platform's answer, success or not
    (Mastodon: 200 for the status, 503 for a failed try); the feed makes no HTTP request
    and records none."""
    mastodon.inject(fault_status(503), route="POST /api/v1/statuses")
    workspace.json("enqueue", "--text", "Mit Status")
    workspace.run("daemon", "--once", check=False)  # 503, then the retry after a short backoff
    attempts = [(a["account"], a["outcome"], a["http_status"]) for a in workspace.json("log")]
    assert sorted(attempts, key=str) == sorted(
        [
            ("mastodon", "transient", 503),
            ("mastodon", "published", 200),
            ("website", "published", None),
        ],
        key=str,
    )


# -- bad post files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("front", "body", "needles"),
    [
        pytest.param(
            '[[media]]\npath = "bild.png"',
            "Bild ohne Beschreibung.",
            ["media[0].alt", 'add alt = "'],
            id="image-without-alt",
        ),
        pytest.param('accounts = ["myspace"]', "Text.", ["myspace"], id="unknown-account"),
        pytest.param('category = "sport"', "Text.", ["sport", "veranstaltung"], id="category"),
        pytest.param(
            'accounts = ["mastodon"]',
            "ä" * 600,
            ["mastodon", "625 of 500", "[variants.mastodon]"],
            id="too-long-suggests-a-variant",
        ),
        pytest.param(
            'link = "https://www.example.org/x"', "Text.", ["www.example.org"], id="foreign-link"
        ),
    ],
)
def test_a_bad_post_file_exits_2_naming_the_problem_and_writes_nothing(
    workspace: Workspace, front: str, body: str, needles: list[str]
) -> None:
    post = workspace.root / "beitrag.md"
    post.write_text(f"+++\n{front}\n+++\n{body}\n", encoding="utf-8")
    (workspace.root / "bild.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    workspace.run("status")  # let SQLite settle its WAL before taking the digest
    before = workspace.fingerprint()
    for args in (["enqueue", str(post)], ["enqueue", "--dry-run", str(post)]):
        result = workspace.run(*args, check=False)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        line = one_error_line(result)
        assert line.startswith(f"crosspost: error: {post}") or str(post) in line, line
        for needle in needles:
            assert needle in line, (needle, line)
    assert workspace.fingerprint() == before
    assert not Path(workspace.root / "site").exists()


# -- a refused credential ---------------------------------------------------------------------


@pytest.mark.parametrize("code", [401, 403])
def test_a_refused_credential_pauses_the_account_with_a_visible_reason(
    workspace: Workspace, mastodon: MastodonFake, code: int
) -> None:
    """401 or 403 from Mastodon: the account is paused, `status` and `accounts` show the
    reason, its delivery waits (not failed, not sent again), the website goes on, and
    `daemon --once` exits 1."""
    from tests.fakes.server import status

    mastodon.inject(
        status(code, {"error": "The access token is invalid"}),
        route="POST /api/v1/statuses",
    )
    post = workspace.json("enqueue", "--text", "Trotz Störung", "--link", f"{SITE}/g")[0]["id"]
    assert workspace.run("daemon", "--once", check=False).returncode == 1
    states = {d["account"]: d["state"] for d in workspace.json("show", str(post))["deliveries"]}
    assert states["website"] == "published"
    assert states["mastodon"] in ("scheduled", "retrying")
    shown = workspace.run("status", check=False).stdout
    [line] = [x for x in shown.splitlines() if "paused account mastodon" in x]
    assert "access token is invalid" in line
    reasons = workspace.json("status")["paused_accounts"]
    assert "access token is invalid" in reasons["mastodon"]
    [row] = [a for a in workspace.json("accounts") if a["account"] == "mastodon"]
    assert "access token is invalid" in row["paused"]
    assert len(mastodon.requests_to("POST /api/v1/statuses")) == 1
    assert mastodon.statuses == []


# -- SIGTERM with a request in flight ---------------------------------------------------------


def test_sigterm_stops_claiming_finishes_the_request_in_flight_and_exits_0(
    workspace: Workspace, mastodon: MastodonFake, tmp_path: Path
) -> None:
    """SIGTERM while Mastodon still works on a status: the daemon says STOPPING=1, claims
    nothing due after that, lets the request finish and records it (published once),
    and exits 0."""
    import socket

    from tests.fakes.server import delay

    address = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(30)
    workspace.env.update(NOTIFY_SOCKET=address)
    mastodon.inject(delay(4, apply=True), route="POST /api/v1/statuses")
    try:
        daemon = workspace.start_daemon()
        messages: list[str] = []

        def receive_until(wanted: str) -> None:
            while not any(wanted in m for m in messages):
                messages.append(sock.recv(4096).decode())

        receive_until("READY=1")
        first = workspace.json(
            "enqueue", "--text", "Schon unterwegs", "--link", f"{SITE}/h1", "--to", "mastodon"
        )[0]["id"]
        mastodon.wait_for(lambda: len(mastodon.requests_to("POST /api/v1/statuses")) == 1, 30)
        daemon.send_signal(signal.SIGTERM)
        receive_until("STOPPING=1")
        later = workspace.json(
            "enqueue", "--text", "Zu spät", "--link", f"{SITE}/h2", "--to", "mastodon"
        )[0]["id"]
        assert daemon.wait(timeout=60) == 0, workspace.output(daemon)
    finally:
        sock.close()
    shown = workspace.json("show", str(first))
    assert shown["state"] == "published"
    assert shown["deliveries"][0]["remote_id"] is not None
    assert [a["outcome"] for a in shown["attempts"]] == ["published"]
    assert workspace.json("show", str(later))["state"] == "scheduled"
    assert len(mastodon.requests_to("POST /api/v1/statuses")) == 1
    assert len(mastodon.statuses_containing(f"{SITE}/h1")) == 1
    assert workspace.json("status")["daemons"] == []


# -- --json on everything that lists ----------------------------------------------------------

POST_KEYS = {"id", "title", "category", "link", "publish_at", "state", "deliveries"}
DELIVERY_KEYS = {"account", "platform", "state", "due_at", "remote_id", "remote_url", "error"}
PREVIEW_KEYS = {"account", "platform", "text", "length", "limit"}
ATTEMPT_KEYS = {"time", "account", "outcome", "http_status", "error"}


def test_every_listing_command_prints_the_documented_json_untranslated(
    workspace: Workspace, mastodon: MastodonFake
) -> None:
    """`list`, `show`, `preview`, `log`, `status`, `accounts` and `accounts check` print
    JSON of the shapes SPEC.md gives (more keys may follow), identical under a German
    locale (JSON is never translated)."""
    post = workspace.root / "beitrag.md"
    post.write_text(f'+++\nlink = "{SITE}/j"\n+++\nGrüße 👋\n', encoding="utf-8")
    [enqueued] = workspace.json("enqueue", str(post))
    assert workspace.run("daemon", "--once", check=False).returncode == 0
    ident = str(enqueued["id"])

    def shapes() -> dict[str, Any]:
        listed = workspace.json("list")
        shown = workspace.json("show", ident)
        for record in [*listed, shown]:
            assert set(record) >= POST_KEYS, record
            for delivery in record["deliveries"]:
                assert set(delivery) >= DELIVERY_KEYS, delivery
        for target in (str(post), ident):
            for item in workspace.json("preview", target):
                assert set(item) >= PREVIEW_KEYS, item
        attempts = workspace.json("log")
        assert len(attempts) == 2
        for attempt in attempts:
            assert set(attempt) >= ATTEMPT_KEYS, attempt
        status = workspace.json("status")
        assert status["counts"]["published"] == 2
        accounts = workspace.json("accounts")
        checks = workspace.json("accounts", "check")
        return {
            "list": [(p["id"], p["state"], [d["state"] for d in p["deliveries"]]) for p in listed],
            "show": (shown["state"], shown["link"], [d["state"] for d in shown["deliveries"]]),
            "log": [(a["account"], a["outcome"]) for a in attempts],
            "status": status["counts"],
            "accounts": accounts,
            "checks": [(c["account"], c["ok"]) for c in checks],
        }

    english = shapes()
    assert english["show"] == ("published", f"{SITE}/j", ["published", "published"])
    people = workspace.run("list").stdout
    workspace.env["LANGUAGE"] = "de"
    workspace.env["LANG"] = "de_DE.UTF-8"
    assert workspace.run("list").stdout != people  # the German catalogue is in use
    assert shapes() == english
