"""A real SMTP server on 127.0.0.1 for tests: aiosmtpd with STARTTLS and AUTH.

::

    def test_it(smtp_server):
        send_mail(smtp_server.settings(), to=["admin@example.de"], subject="s", body="b")
        [message] = smtp_server.wait_for(1)
        assert message["Subject"] == "s"

The server speaks STARTTLS with a throw-away self-signed certificate made for
this test session (trusted through ``smtp.ca_file``), accepts AUTH PLAIN/LOGIN
only after STARTTLS and only with :attr:`SmtpServer.username` /
:attr:`SmtpServer.password`, and collects every message it accepts.
:meth:`SmtpServer.settings` returns matching :class:`MailSettings` (the
password in a 0600 file). Set :attr:`SmtpServer.reject` to make it refuse
messages with a given SMTP reply, :attr:`SmtpServer.hold` to make it hang.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from crosspost.config import MailSettings

__all__ = ["Received", "SmtpServer", "make_certificate", "smtp_server"]


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (cert file, key file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "crosspost test smtp")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file = folder / "smtp-cert.pem"
    key_file = folder / "smtp-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    return cert_file, key_file


@dataclass
class Received:
    """One accepted message with its envelope and how the session looked."""

    message: EmailMessage
    mail_from: str
    rcpt_tos: list[str]
    tls: bool
    authenticated: bool


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        if self.server.hold:
            self.server.holding.set()
            while self.server.hold:  # a mail server that does not answer (until released)
                await asyncio.sleep(0.05)
        if self.server.reject is not None:
            return self.server.reject
        raw = envelope.original_content or envelope.content or b""
        data = raw if isinstance(raw, bytes) else raw.encode("utf-8")
        # SMTP lines end in CRLF; tests compare with Python text.
        message = email.message_from_bytes(
            data.replace(b"\r\n", b"\n"), policy=email.policy.default
        )
        assert isinstance(message, EmailMessage)
        received = Received(
            message=message,
            mail_from=str(envelope.mail_from),
            rcpt_tos=list(envelope.rcpt_tos),
            tls=session.ssl is not None,
            authenticated=bool(session.authenticated),
        )
        with self.server.arrived:
            self.server.received.append(received)
            self.server.arrived.notify_all()
        return "250 OK"


class _TLSController(Controller):
    def __init__(self, handler: Any, *, context: ssl.SSLContext, server: SmtpServer) -> None:
        self._context = context
        self._server = server
        super().__init__(handler, hostname="127.0.0.1", port=server.port)

    def factory(self) -> SMTP:
        return SMTP(
            self.handler,
            hostname="localhost",
            tls_context=self._context,
            require_starttls=self._server.require_starttls,
            auth_require_tls=True,
            auth_required=self._server.auth_required,
            authenticator=self._server._authenticate,
        )


@dataclass
class SmtpServer:
    host: str
    port: int
    cert_file: Path
    password_file: Path
    username: str = "crosspost"
    password: str = "smtp-secret-Xq7"
    require_starttls: bool = True
    auth_required: bool = True
    #: an SMTP reply such as "550 mailbox unavailable" to refuse messages with
    reject: str | None = None
    #: keep every client waiting after DATA (a hanging server) while True; ``holding``
    #: is set once a client waits
    hold: bool = False
    holding: threading.Event = field(default_factory=threading.Event)
    received: list[Received] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)
    logins: list[str] = field(default_factory=list)

    @property
    def messages(self) -> list[EmailMessage]:
        with self.arrived:
            return [item.message for item in self.received]

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword):
            login = data.login.decode()
            self.logins.append(login)
            ok = login == self.username and data.password.decode() == self.password
            return AuthResult(success=ok, handled=False)
        return AuthResult(success=False, handled=False)

    def settings(self, **overrides: Any) -> MailSettings:
        values: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "starttls": True,
            "username": self.username,
            "password_file": self.password_file,
            "sender": "crosspost@example.de",
            "ca_file": self.cert_file,
            "timeout": 10.0,
        }
        values.update(overrides)
        return MailSettings(**values)

    def toml(self) -> str:
        """The ``[smtp]`` section for a configuration file."""
        return (
            "[smtp]\n"
            f'host = "{self.host}"\nport = {self.port}\nstarttls = true\n'
            f'username = "{self.username}"\npassword_file = "{self.password_file}"\n'
            f'sender = "crosspost@example.de"\nca_file = "{self.cert_file}"\ntimeout = 10\n'
        )

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        """Block until ``count`` messages have arrived; fail the test after ``timeout``."""
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.received) >= count, timeout):
                pytest.fail(f"expected {count} mails, got {len(self.received)}")
            return list(self.received)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def smtp_certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("smtp-tls"))


@pytest.fixture
def smtp_server(
    smtp_certificate: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SmtpServer]:
    cert_file, key_file = smtp_certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    folder = tmp_path_factory.mktemp("smtp")
    password_file = folder / "smtp-password"
    server = SmtpServer(
        host="127.0.0.1", port=_free_port(), cert_file=cert_file, password_file=password_file
    )
    password_file.write_text(server.password + "\n")
    password_file.chmod(0o600)
    controller = _TLSController(_Handler(server), context=context, server=server)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()
