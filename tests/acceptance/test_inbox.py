"""The inbox from the editors' CLI, as installed, on SQLite and PostgreSQL: a mention of a
published post reaches the inbox (through ``inbox sync`` and through the running daemon),
is forwarded by mail to an office over STARTTLS to a real SMTP server on 127.0.0.1,
answered with the referral template as a reply on the platform, done, counted in the
response times, and deleted once its retention time is over.
"""

from __future__ import annotations

import json
import signal
from typing import Any

from tests.acceptance.conftest import Workspace
from tests.fakes.mastodon import MastodonFake
from tests.smtpfixture import SmtpServer

OFFICE_MAIL = "bauamt@zv-staedtedreieck.de"
PHONE = "+49 3491 000-100"
QUESTION = "Wer ist für den Gehweg in der Lindenstraße zuständig?"


def configure(ws: Workspace, smtp: SmtpServer, extra: str = "") -> None:
    text = ws.config.read_text(encoding="utf-8")
    text += smtp.toml()
    text += f"""
[inbox]
sync_interval = 10

[inbox.offices.bauamt]
name = "das Bauamt"
email = "{OFFICE_MAIL}"
phone = "{PHONE}"

[inbox.templates.verweis]
text = "Danke, {{handle}}! Dafür ist {{office}} zuständig: {{email}}, Tel. {{phone}}."
office = "bauamt"
{extra}
"""
    ws.config.write_text(text, encoding="utf-8")


def publish(ws: Workspace) -> tuple[int, str]:
    """Enqueue and publish one post on Mastodon; its post id and status id."""
    [entry] = ws.json("enqueue", "--text", "Baustelle in der Lindenstraße", "--to", "mastodon")
    ws.run("daemon", "--once")
    shown = ws.json("show", str(entry["id"]))
    [delivery] = shown["deliveries"]
    assert delivery["state"] == "published"
    return int(entry["id"]), str(delivery["remote_id"])


def test_an_editor_works_the_whole_inbox_from_the_cli(
    workspace: Workspace, mastodon: MastodonFake, smtp_server: SmtpServer
) -> None:
    """sync → list → show → forward (mail) → reply with the template → done → times → purge."""
    ws = workspace
    configure(ws, smtp_server)
    post_id, status_id = publish(ws)
    mention = mastodon.mention(f"@staedtedreieck {QUESTION}", in_reply_to=status_id)

    [synced] = ws.json("inbox", "sync")
    assert synced == {"account": "mastodon", "ok": True, "new": 1, "note": None}
    assert ws.json("inbox", "sync")[0]["new"] == 0  # resumed from the cursor: nothing twice
    [state] = ws.json("inbox", "status")
    assert state["account"] == "mastodon"
    assert state["open"] == 1
    assert state["synced_at"] is not None
    assert state["error"] is None

    [item] = ws.json("inbox", "--open")
    assert item["handle"] == "@buerger@example.social"
    assert QUESTION in item["text"]
    assert item["post"] == post_id
    assert item["state"] == "open"
    assert item["first_response_at"] is None
    assert set(item) >= {"id", "account", "platform", "url", "created_at", "response_seconds"}
    human = ws.run("inbox", "show", str(item["id"])).stdout
    assert QUESTION in human
    assert "@buerger@example.social" in human

    ws.run("inbox", "forward", str(item["id"]), "--to", "bauamt")
    [mail] = smtp_server.wait_for(1)
    assert mail.rcpt_tos == [OFFICE_MAIL]
    assert mail.tls
    assert mail.authenticated
    body = mail.message.get_content()
    assert QUESTION in body
    assert item["url"] in body
    # text, link, time — no more (the handle appears only inside the link)
    assert "buerger" not in body.replace(item["url"], "")
    forwarded = ws.json("inbox", "show", str(item["id"]))
    assert forwarded["forwarded_to"] == "bauamt"
    assert forwarded["state"] == "open"  # forwarding does not answer the person

    replied = ws.json("inbox", "reply", str(item["id"]), "--template", "verweis")
    [answer] = mastodon.replies_to(mention)
    # the template names the author, so no extra mention is put in front
    assert answer.text == (
        f"Danke, @buerger@example.social! Dafür ist das Bauamt zuständig: {OFFICE_MAIL}, "
        f"Tel. {PHONE}."
    )
    assert replied["state"] == "done"
    assert replied["reply_url"].endswith(answer.id)
    assert replied["response_seconds"] is not None
    assert ws.json("inbox", "--open") == []
    twice = ws.run("inbox", "reply", str(item["id"]), "--text", "Nochmal", check=False)
    assert twice.returncode == 2
    assert "--again" in twice.stderr
    assert len(mastodon.replies_to(mention)) == 1

    times = ws.json("inbox", "times")
    assert sum(m["answered"] for m in times["months"]) == 1

    assert ws.json("privacy", "purge")["deleted"] == 0  # done today: kept 90 days
    ws.env["CROSSPOST_PRIVACY__RETENTION_DAYS"] = "0"
    assert ws.json("privacy", "purge", "--dry-run")["due"] == 1
    assert ws.json("privacy", "purge")["deleted"] == 1
    assert ws.json("inbox") == []
    gone = ws.run("inbox", "show", str(item["id"]), check=False)
    assert gone.returncode == 2
    # the response time outlives the interaction, without any personal data
    assert sum(m["answered"] for m in ws.json("inbox", "times")["months"]) == 1


def test_bad_input_writes_nothing_and_exits_2(
    workspace: Workspace, mastodon: MastodonFake, smtp_server: SmtpServer
) -> None:
    """Unknown template, unknown office, a reply text too long, an interaction that does not
    exist: one line, exit 2, no mail, no post, the interaction unchanged."""
    ws = workspace
    configure(ws, smtp_server)
    _post_id, status_id = publish(ws)
    mention = mastodon.mention(f"@staedtedreieck {QUESTION}", in_reply_to=status_id)
    ws.run("inbox", "sync")
    [item] = ws.json("inbox")
    before = ws.fingerprint()
    cases: list[tuple[list[str], str]] = [
        (["inbox", "reply", str(item["id"]), "--template", "nope"], "inbox.templates"),
        (["inbox", "forward", str(item["id"]), "--to", "finanzamt"], "inbox.offices"),
        (["inbox", "reply", str(item["id"]), "--text", "x" * 600], "500"),
        (["inbox", "reply", str(item["id"])], "--text"),
        (["inbox", "done", "999999"], "999999"),
    ]
    for args, named in cases:
        result = ws.run(*args, check=False)
        assert result.returncode == 2, (args, result.stderr)
        assert named in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr
    assert smtp_server.received == []
    assert mastodon.replies_to(mention) == []
    assert ws.fingerprint() == before


def test_a_config_naming_an_unknown_office_is_refused(
    workspace: Workspace, smtp_server: SmtpServer
) -> None:
    """A template whose office is not configured: exit 2 naming the key."""
    ws = workspace
    configure(ws, smtp_server, '\n[inbox.templates.falsch]\ntext = "{email}"\noffice = "zoo"\n')
    result = ws.run("inbox", check=False)
    assert result.returncode == 2
    assert "templates.falsch.office" in result.stderr
    assert "zoo" in result.stderr


def test_the_daemon_fetches_interactions_by_itself(
    workspace: Workspace, mastodon: MastodonFake, smtp_server: SmtpServer
) -> None:
    """The running daemon's inbox job brings a new mention into the inbox without any
    command, and SIGTERM still ends it with 0."""
    ws = workspace
    configure(ws, smtp_server)
    _post_id, status_id = publish(ws)
    mastodon.mention(f"@staedtedreieck {QUESTION}", in_reply_to=status_id)
    daemon = ws.start_daemon()
    ws.wait_ready(daemon)

    def arrived() -> bool:
        items: list[dict[str, Any]] = json.loads(ws.run("inbox", "--json").stdout)
        return len(items) == 1

    ws.wait_until(arrived, timeout=60, what="the daemon's inbox job")
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=30) == 0, ws.output(daemon)
