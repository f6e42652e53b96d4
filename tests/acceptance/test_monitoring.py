"""Issue 10 as an admin meets it, through the installed ``crosspost`` command: an alert
mail for a failed delivery from a real SMTP server on 127.0.0.1, ``status --check``
with the monitoring-plugin exit codes, ``/metrics`` of a running daemon, journald log
lines, ``db backup`` / ``db restore`` -- on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import signal

import httpx
from tests.acceptance.conftest import SITE, Workspace
from tests.fakes.mastodon import DEFAULT_TOKEN, MastodonFake
from tests.fakes.server import status
from tests.smtpfixture import SmtpServer

from crosspost.exporter import families


def add_config(workspace: Workspace, text: str) -> None:
    workspace.config.write_text(workspace.config.read_text() + "\n" + text)


def with_alerts(workspace: Workspace, smtp: SmtpServer) -> None:
    add_config(
        workspace,
        smtp.toml() + '\n[alerts]\nto = ["it@zv-staedtedreieck.de"]\ninterval = 0.2\n',
    )


def reject_next_status(mastodon: MastodonFake) -> None:
    mastodon.inject(
        status(422, {"error": "Validation failed: Text character limit of 500 exceeded"}),
        route="POST /api/v1/statuses",
    )


def test_a_failed_delivery_mails_the_admin_and_the_check_turns_critical(
    workspace: Workspace, mastodon: MastodonFake, smtp_server: SmtpServer
) -> None:
    """The issue's 'done when': with [smtp] and [alerts] configured as docs/admin.md
    says, a delivery the platform refuses brings one mail (STARTTLS, login) naming the
    post and the reason, and `status --check` says CRITICAL with exit code 2."""
    with_alerts(workspace, smtp_server)
    daemon = workspace.start_daemon()
    workspace.wait_ready(daemon)
    check = workspace.run("status", "--check", check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.startswith("CROSSPOST OK - ")

    reject_next_status(mastodon)
    post = workspace.json("enqueue", "--text", "Hallo", "--link", f"{SITE}/a", "--to", "mastodon")
    post_id = post[0]["id"]
    [received] = smtp_server.wait_for(1, timeout=60)
    assert received.tls
    assert received.authenticated
    assert received.rcpt_tos == ["it@zv-staedtedreieck.de"]
    assert "delivery failed on mastodon" in received.message["Subject"]
    body = received.message.get_content()
    assert f"post {post_id}" in body
    assert "character limit" in body

    check = workspace.run("status", "--check", check=False)
    assert check.returncode == 2, check.stdout
    lines = check.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("CROSSPOST CRITICAL - 1 delivery failed within 24 h (mastodon)")
    as_json = workspace.run("status", "--check", "--json", check=False)
    assert as_json.returncode == 2
    assert '"status": "critical"' in as_json.stdout

    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=60) == 0
    log = workspace.output(daemon)
    assert "alert_mailed kind=failed account=mastodon" in log
    assert smtp_server.password not in log
    assert DEFAULT_TOKEN not in log
    assert len(smtp_server.messages) == 1


def test_daemon_once_mails_at_its_end(
    workspace: Workspace, mastodon: MastodonFake, smtp_server: SmtpServer
) -> None:
    """A cron-driven `daemon --once` mails what failed in its run before it exits 1."""
    with_alerts(workspace, smtp_server)
    reject_next_status(mastodon)
    workspace.run("enqueue", "--text", "Hallo", "--link", f"{SITE}/a", "--to", "mastodon")
    assert workspace.run("daemon", "--once", check=False).returncode == 1
    [received] = smtp_server.wait_for(1)
    assert "delivery failed on mastodon" in received.message["Subject"]


def test_alerts_without_smtp_or_without_password_are_refused(
    workspace: Workspace, smtp_server: SmtpServer
) -> None:
    """alerts.to without [smtp] is a configuration error (exit 2, one line); a daemon
    whose SMTP password file is missing refuses to start, naming the key."""
    original = workspace.config.read_text()
    add_config(workspace, '[alerts]\nto = ["it@example.de"]\n')
    refused = workspace.run("status", check=False)
    assert refused.returncode == 2
    assert "alerts.to: there is no [smtp] section" in refused.stderr
    check = workspace.run("status", "--check", check=False)
    assert check.returncode == 3
    assert check.stdout.startswith("CROSSPOST UNKNOWN - ")
    workspace.config.write_text(original)
    with_alerts(workspace, smtp_server)
    smtp_server.password_file.unlink()
    result = workspace.run("daemon", "--once", check=False)
    assert result.returncode == 2
    assert "smtp.password_file" in result.stderr
    assert "Traceback" not in result.stderr


def test_status_check_is_unknown_when_the_database_is_unreachable(
    workspace: Workspace,
) -> None:
    """A check that cannot look answers UNKNOWN (3), one line, no traceback."""
    text = workspace.config.read_text()
    broken = re.sub(
        r'(?m)^url = "(sqlite|postgresql)[^"]*"$', 'url = "sqlite:////nonexistent/x.db"', text
    )
    workspace.config.write_text(broken)
    result = workspace.run("status", "--check", check=False)
    assert result.returncode == 3
    assert result.stdout.startswith("CROSSPOST UNKNOWN - ")
    assert len(result.stdout.splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_metrics_of_a_running_daemon(workspace: Workspace, mastodon: MastodonFake) -> None:
    """With [metrics] listen on loopback the daemon serves /metrics in the Prometheus
    text format: a published post shows in attempts, duration, lateness and the
    deliveries gauge."""
    add_config(workspace, '[metrics]\nlisten = "127.0.0.1:0"\n')
    daemon = workspace.start_daemon()
    workspace.wait_ready(daemon)
    # the heartbeat comes before the accounts are opened; the endpoint after them
    workspace.wait_until(
        lambda: "metrics_listening" in workspace.output(daemon), what="the metrics endpoint"
    )
    found = re.search(r"metrics_listening address=(\S+)", workspace.output(daemon))
    assert found, workspace.output(daemon)
    url = f"http://{found.group(1)}/metrics"
    workspace.run("enqueue", "--text", "Gemessen", "--link", f"{SITE}/m", "--to", "mastodon")
    workspace.wait_until(
        lambda: workspace.json("status")["counts"]["published"] == 1, what="the post to publish"
    )
    samples: dict[str, float] = {}
    for family in families(httpx.get(url, timeout=10).text):
        for sample in family.samples:
            key = (
                sample.name
                + "{"
                + ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                + "}"
            )
            samples[key] = sample.value
    assert samples["crosspost_attempts_total{account=mastodon,outcome=published}"] == 1
    assert samples["crosspost_publish_duration_seconds_count{account=mastodon}"] == 1
    assert samples["crosspost_publish_lateness_seconds_count{account=mastodon}"] == 1
    assert samples["crosspost_deliveries{account=mastodon,state=published}"] == 1
    assert samples["crosspost_database_up{}"] == 1
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=60) == 0


def test_journald_lines_and_quiet(workspace: Workspace, mastodon: MastodonFake) -> None:
    """Under systemd ($JOURNAL_STREAM) every line carries its syslog priority and
    reads `event key=value …`; -q keeps only warnings and errors; no secret appears."""
    workspace.env["JOURNAL_STREAM"] = "8:12345"
    reject_next_status(mastodon)
    workspace.run("enqueue", "--text", "Eins", "--link", f"{SITE}/1", "--to", "mastodon")
    result = workspace.run("daemon", "--once", check=False)
    lines = result.stderr.splitlines()
    assert lines
    assert all(re.match(r"<[0-7]>[a-z_]+( [a-z_]+=\S.*)?$", line) for line in lines), lines
    failed_lines = [line for line in lines if line.startswith("<3>failed ")]
    assert len(failed_lines) == 1, lines
    failed = failed_lines[0]
    assert re.search(
        r" delivery=\d+ post=\d+ account=mastodon attempt=1 outcome=rejected http_status=422 ",
        failed,
    )
    assert any(line.startswith("<6>started ") for line in lines), lines
    assert DEFAULT_TOKEN not in result.stderr
    quiet = workspace.run("-q", "daemon", "--once", check=False)
    assert not any(line.startswith("<6>") for line in quiet.stderr.splitlines()), quiet.stderr


def test_backup_while_running_and_restore_after_stopping(
    workspace: Workspace, mastodon: MastodonFake
) -> None:
    """`db backup` works beside a running daemon; `db restore` refuses while it runs
    (exit 1, nothing changed), asks for --yes without a terminal (exit 2), and after
    the stop brings the backed-up queue back."""
    workspace.run("enqueue", "--text", "Gesichert", "--link", f"{SITE}/g", "--at", "+2h")
    daemon = workspace.start_daemon()
    workspace.wait_ready(daemon)
    backup_file = workspace.root / "crosspost.backup"
    made = workspace.run("db", "backup", str(backup_file))
    assert "backup written to" in made.stdout
    again = workspace.run("db", "backup", str(backup_file), check=False)
    assert again.returncode == 2
    workspace.run("enqueue", "--text", "Danach", "--link", f"{SITE}/d", "--at", "+2h")
    running = workspace.run("db", "restore", "--yes", str(backup_file), check=False)
    assert running.returncode == 1
    assert "stop every daemon first" in running.stderr
    assert len(workspace.json("list")) == 2
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=60) == 0
    unconfirmed = workspace.run("db", "restore", str(backup_file), check=False)
    assert unconfirmed.returncode == 2
    assert "--yes" in unconfirmed.stderr
    workspace.run("db", "restore", "--yes", str(backup_file))
    assert [p["title"] for p in workspace.json("list")] == ["Gesichert"]


def test_a_hanging_mail_server_never_holds_up_publishing(
    workspace: Workspace, mastodon: MastodonFake, smtp_server: SmtpServer
) -> None:
    """Alert mails go out beside publishing: while the mail server keeps the alert for
    one failure waiting, the next post is published; the mail arrives once it answers."""
    with_alerts(workspace, smtp_server)
    # the client waits for the held mail longer than the test does
    workspace.config.write_text(
        workspace.config.read_text().replace("timeout = 10", "timeout = 300")
    )
    smtp_server.hold = True
    daemon = workspace.start_daemon()
    try:
        workspace.wait_ready(daemon)
        reject_next_status(mastodon)
        workspace.run("enqueue", "--text", "Eins", "--link", f"{SITE}/1", "--to", "mastodon")
        assert smtp_server.holding.wait(60), workspace.output(daemon)
        workspace.run("enqueue", "--text", "Zwei", "--link", f"{SITE}/2", "--to", "mastodon")
        workspace.wait_until(
            lambda: len(mastodon.statuses_containing(f"{SITE}/2")) == 1,
            what="the second post to publish while the alert mail hangs",
        )
        assert smtp_server.messages == []
    finally:
        smtp_server.hold = False
    [received] = smtp_server.wait_for(1)
    assert "delivery failed on mastodon" in received.message["Subject"]
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=60) == 0
