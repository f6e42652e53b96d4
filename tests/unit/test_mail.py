"""crosspost.mail against a real SMTP server on 127.0.0.1 (STARTTLS, AUTH)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
from tests.smtpfixture import SmtpServer

from crosspost.config import MailSettings
from crosspost.exceptions import ConfigError
from crosspost.mail import MailError, send_mail


def test_sends_over_starttls_with_login(smtp_server: SmtpServer) -> None:
    send_mail(
        smtp_server.settings(),
        to=["admin@example.de", "ops@example.de"],
        subject="Zustellung fehlgeschlagen:\nmastodon",
        body="Grüße aus dem Rathaus\n",
    )
    [received] = smtp_server.wait_for(1)
    assert received.tls
    assert received.authenticated
    assert received.rcpt_tos == ["admin@example.de", "ops@example.de"]
    assert received.mail_from == "crosspost@example.de"
    message = received.message
    assert message["Subject"] == "Zustellung fehlgeschlagen: mastodon"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content() == "Grüße aus dem Rathaus\n"


def test_password_from_environment(
    smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SMTP_PASSWORD", smtp_server.password)
    settings = smtp_server.settings(password_file=None, password_env="TEST_SMTP_PASSWORD")
    send_mail(settings, to=["admin@example.de"], subject="s", body="b")
    assert len(smtp_server.wait_for(1)) == 1


def test_password_from_systemd_credentials(
    smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = smtp_server.password_file.parent / "creds"
    folder.mkdir()
    (folder / "smtp").write_text(smtp_server.password)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(folder))
    send_mail(smtp_server.settings(password_file=None), to=["a@example.de"], subject="s", body="b")
    assert smtp_server.wait_for(1)[0].authenticated


def test_wrong_password_is_one_line_without_the_secret(smtp_server: SmtpServer) -> None:
    smtp_server.password_file.write_text("not-the-password-Zz9")
    with pytest.raises(MailError) as caught:
        send_mail(smtp_server.settings(), to=["a@example.de"], subject="s", body="b")
    text = caught.value.message
    assert "refused the login of crosspost" in text
    assert "not-the-password-Zz9" not in text
    assert "\n" not in text
    assert smtp_server.messages == []


def test_untrusted_certificate_is_refused(smtp_server: SmtpServer) -> None:
    with pytest.raises(MailError, match="not trusted"):
        send_mail(smtp_server.settings(ca_file=None), to=["a@example.de"], subject="s", body="b")
    assert smtp_server.messages == []


def test_unreachable_server(smtp_server: SmtpServer) -> None:
    settings = smtp_server.settings(port=1)
    with pytest.raises(MailError, match=r"cannot reach 127\.0\.0\.1:1"):
        send_mail(settings, to=["a@example.de"], subject="s", body="b")


def test_rejected_message(smtp_server: SmtpServer) -> None:
    smtp_server.reject = "550 mailbox unavailable"
    with pytest.raises(MailError, match="answered 550: mailbox unavailable"):
        send_mail(smtp_server.settings(), to=["a@example.de"], subject="s", body="b")


def test_missing_password_names_the_key(smtp_server: SmtpServer) -> None:
    settings = smtp_server.settings(password_file=smtp_server.password_file.parent / "nope")
    with pytest.raises(ConfigError, match=r"smtp\.password_file: .*nope does not exist"):
        send_mail(settings, to=["a@example.de"], subject="s", body="b")


def test_password_file_readable_by_others_is_refused(smtp_server: SmtpServer) -> None:
    smtp_server.password_file.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        send_mail(smtp_server.settings(), to=["a@example.de"], subject="s", body="b")


def test_plain_login_to_remote_host_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="must not travel unencrypted"):
        MailSettings(host="mail.example.de", starttls=False, username="u", sender="c@example.de")


def test_no_recipient() -> None:
    settings = MailSettings(host="127.0.0.1", sender="c@example.de")
    with pytest.raises(MailError, match="no recipient"):
        send_mail(settings, to=[" "], subject="s", body="b")


def test_implicit_tls_on_port_465_style(
    smtp_certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    """tls = true speaks TLS from the first byte (SMTPS), without STARTTLS."""
    from aiosmtpd.controller import Controller
    from tests.smtpfixture import _free_port

    received: list[bytes] = []

    class Handler:
        async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
            received.append(envelope.content)
            return "250 OK"

    cert, key = smtp_certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    controller = Controller(Handler(), hostname="127.0.0.1", port=_free_port(), ssl_context=context)
    controller.start()
    try:
        settings = MailSettings(
            host="127.0.0.1",
            port=controller.port,
            tls=True,  # starttls defaults to false then
            sender="c@example.de",
            ca_file=cert,
        )
        send_mail(settings, to=["a@example.de"], subject="TLS", body="b")
    finally:
        controller.stop()
    assert len(received) == 1
    assert b"Subject: TLS" in received[0]
