"""Sending one plain-text mail through the ``[smtp]`` server.

Used by the alerts (:mod:`crosspost.alerts`) and by the inbox, which forwards
requests to offices. :func:`send_mail` blocks for at most ``settings.timeout``
per network step; callers in the daemon run it off the publishing path (a
periodic job in its own thread). Every failure is a :class:`MailError` with one
translated line that never contains the password.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from crosspost.config import MailSettings
from crosspost.exceptions import CrosspostError
from crosspost.i18n import _
from crosspost.observability import register_secret, scrub

__all__ = ["MailError", "MailSettings", "build_message", "send_mail"]


class MailError(CrosspostError):
    """The mail could not be sent."""


def _tls_context(settings: MailSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
    if not settings.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def build_message(
    settings: MailSettings, *, to: Sequence[str], subject: str, body: str
) -> EmailMessage:
    """The message as it is sent: UTF-8 text, Date and Message-ID set."""
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = ", ".join(to)
    # A header must be one line: a newline in a subject would start a new header.
    message["Subject"] = " ".join(subject.split())
    message["Date"] = formatdate(localtime=False, usegmt=True)
    domain = settings.sender.rpartition("@")[2] or None
    message["Message-ID"] = make_msgid(domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body, charset="utf-8")
    return message


def send_mail(settings: MailSettings, *, to: Sequence[str], subject: str, body: str) -> None:
    """Send ``body`` to ``to``; raise :class:`MailError` (ConfigError for the password)."""
    recipients = [address.strip() for address in to if address.strip()]
    if not recipients:
        raise MailError(_("mail: no recipient given"))
    password = settings.password()  # ConfigError names the key to fix
    if password is not None:
        register_secret(password.get_secret_value())
    message = build_message(settings, to=recipients, subject=subject, body=body)
    where = f"{settings.host}:{settings.port}"
    try:
        client: smtplib.SMTP
        if settings.tls:
            client = smtplib.SMTP_SSL(
                settings.host,
                settings.port,
                timeout=settings.timeout,
                context=_tls_context(settings),
            )
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        with client:
            client.ehlo()
            if settings.starttls:
                if not client.has_extn("starttls"):
                    raise MailError(
                        _(
                            "mail: {server} does not offer STARTTLS; check smtp.host and "
                            "smtp.port, or set starttls = false for a server on this machine"
                        ).format(server=where)
                    )
                client.starttls(context=_tls_context(settings))
                client.ehlo()
            if settings.username and password is not None:
                client.login(settings.username, password.get_secret_value())
            refused = client.send_message(message, from_addr=settings.sender, to_addrs=recipients)
    except MailError:
        raise
    except smtplib.SMTPAuthenticationError:
        raise MailError(
            _(
                "mail: {server} refused the login of {user}; check smtp.username and the password"
            ).format(server=where, user=settings.username)
        ) from None
    except smtplib.SMTPNotSupportedError:
        raise MailError(
            _("mail: {server} does not support logging in on this connection").format(server=where)
        ) from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise MailError(
            _("mail: {server} refused every recipient: {recipients}").format(
                server=where, recipients=", ".join(sorted(exc.recipients))
            )
        ) from None
    except smtplib.SMTPSenderRefused:
        raise MailError(
            _("mail: {server} refused the sender {sender}; check smtp.sender").format(
                server=where, sender=settings.sender
            )
        ) from None
    except smtplib.SMTPResponseException as exc:
        raise MailError(
            _("mail: {server} answered {code}: {reason}").format(
                server=where, code=exc.smtp_code, reason=_reason(exc.smtp_error)
            )
        ) from None
    except ssl.SSLCertVerificationError as exc:
        raise MailError(
            _(
                "mail: the certificate of {server} is not trusted ({reason}); "
                "set smtp.ca_file to the certificate that signed it"
            ).format(server=where, reason=scrub(exc.verify_message or str(exc)))
        ) from None
    except (ssl.SSLError, smtplib.SMTPException) as exc:
        raise MailError(
            _("mail: sending through {server} failed: {reason}").format(
                server=where, reason=scrub(str(exc))
            )
        ) from None
    except TimeoutError:
        raise MailError(
            _("mail: {server} did not answer within {seconds} seconds").format(
                server=where, seconds=f"{settings.timeout:g}"
            )
        ) from None
    except OSError as exc:
        raise MailError(
            _("mail: cannot reach {server}: {reason}").format(
                server=where, reason=exc.strerror or str(exc)
            )
        ) from None
    if refused:
        raise MailError(
            _("mail: {server} refused some recipients: {recipients}").format(
                server=where, recipients=", ".join(sorted(refused))
            )
        )


def _reason(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return scrub(" ".join(text.split()))[:300]
