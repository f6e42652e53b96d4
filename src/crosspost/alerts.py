"""Alerts by e-mail: find what an admin must know, and mail it without storms.

The daemon's operations thread (:mod:`crosspost.operations`) calls
:meth:`Alerts.run` every ``alerts.interval`` seconds. Each round

1. **finds** events in the database -- deliveries that failed for good or whose
   outcome stays unknown, paused accounts, tokens expiring within
   ``alerts.token_expiry_days``, deliveries late by more than
   ``alerts.late_minutes`` -- and stores each once (``alert_events``, unique per
   kind, account and ref, so several daemons finding the same event store it once);
2. **mails** (``mode`` immediate/both) one message per event kind and account
   listing every event not mailed yet, at most one per ``throttle_minutes``
   (``alert_sends``: a conditional update decides which daemon sends, across
   restarts too); events found meanwhile wait for the next mail;
3. **digests** (``mode`` digest/both) once a day at ``digest_time`` (site time
   zone) every event of the last day.

Reading the state from the database rather than hooking the publisher keeps
alerts off the publishing path and makes them survive restarts: an event found
while the mail server is down is mailed once it is back.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby

from crosspost.config import MailSettings, Settings
from crosspost.exceptions import CrosspostError
from crosspost.i18n import _, ngettext
from crosspost.observability import EventLogger, scrub
from crosspost.store.operations import DeliveryRow, NewEvent, OperationsStore, StoredEvent
from crosspost.store.sql import SqlStore

log = EventLogger("crosspost.alerts")

SendMail = Callable[..., None]
#: an ``unknown`` the daemon settles itself this soon (a lookup after a restart) is not mailed
UNKNOWN_GRACE = timedelta(minutes=2)
#: failures are looked for since the last round, minus this much (clocks of several hosts)
SCAN_OVERLAP = timedelta(minutes=10)
#: at most this many events are listed in one mail; the rest are counted
LISTED = 50


def kind_label(kind: str) -> str:
    labels = {
        "failed": _("delivery failed"),
        "unknown": _("delivery outcome unknown"),
        "paused": _("account paused"),
        "token_expiry": _("token expires soon"),
        "late": _("deliveries late"),
    }
    return labels.get(kind, kind)


def advice(kind: str) -> str:
    texts = {
        "failed": _(
            "The platform refused these posts for good. Read the reason with "
            "`crosspost show ID`, fix the post or the account, then `crosspost retry ID`."
        ),
        "unknown": _(
            "The platform may or may not have published these posts; the daemon could not "
            "tell. Look at the account on the platform: if the post is there, "
            "`crosspost cancel ID`; if it is not, `crosspost retry ID` sends it again."
        ),
        "paused": _(
            "The platform refused the account's credentials; its posts wait. Renew the "
            "token (docs/admin.md, section 4) and restart the service, or wait for the "
            "daemon to try the account again."
        ),
        "token_expiry": _(
            "Renew the token before it expires (docs/admin.md, section 4), or the "
            "account will be paused."
        ),
        "late": _(
            "These deliveries are due but have not been published. Check "
            "`crosspost status` and the daemon's log: `journalctl -u crosspost`."
        ),
    }
    return texts.get(kind, "")


def _delivery_event(kind: str, row: DeliveryRow) -> NewEvent:
    """The event of a delivery that failed, or whose outcome is unknown (one per attempt)."""
    return NewEvent(
        kind=kind,
        account=row.account,
        ref=f"{row.id}:{row.attempts}",
        delivery_id=row.id,
        post_id=row.post_id,
        detail=_('post {post} "{title}": {error}').format(
            post=row.post_id, title=row.title, error=row.error or "-"
        ),
    )


@dataclass(frozen=True, slots=True)
class Round:
    """What one round did (for tests and the log)."""

    found: int = 0
    mailed: int = 0
    digests: int = 0
    failed_mails: int = 0


class Alerts:
    def __init__(
        self,
        settings: Settings,
        store: SqlStore,
        *,
        send: SendMail | None = None,
    ) -> None:
        if settings.smtp is None or not settings.alerts.to:
            raise ValueError("alerts need [smtp] and alerts.to")
        self.settings = settings
        self.config = settings.alerts
        self.smtp: MailSettings = settings.smtp
        self.store = store
        self.ops = OperationsStore(store)
        if send is None:
            from crosspost.mail import send_mail

            send = send_mail
        self.send = send
        self._failed_since: datetime | None = None

    # -- one round ------------------------------------------------------------------------
    def run(self, now: datetime) -> Round:
        found = self.detect(now)
        mailed = failed = digests = 0
        if self.config.mode in ("immediate", "both"):
            mailed, failed = self.mail_immediate(now)
        if self.config.mode in ("digest", "both"):
            sent, digest_failed = self.mail_digest(now)
            digests, failed = digests + sent, failed + digest_failed
        return Round(found=found, mailed=mailed, digests=digests, failed_mails=failed)

    # -- finding events -----------------------------------------------------------------
    def detect(self, now: datetime) -> int:
        kinds = set(self.config.events)
        events: list[NewEvent] = []
        if "failed" in kinds:
            since = self._failed_since or now - max(
                timedelta(days=1), timedelta(minutes=self.config.throttle_minutes)
            )
            for row in self.ops.failed_since(since):
                events.append(_delivery_event("failed", row))
            self._failed_since = now - SCAN_OVERLAP
        if "unknown" in kinds:
            for row in self.ops.unknown():
                if row.updated_at > now - UNKNOWN_GRACE:
                    continue
                events.append(_delivery_event("unknown", row))
        states = self.store.account_states() if kinds & {"paused", "token_expiry", "late"} else {}
        enabled = self.settings.enabled_accounts()
        paused = {
            name for name, st in states.items() if st.paused_reason is not None and name in enabled
        }
        if "paused" in kinds:
            for name in sorted(paused):
                st = states[name]
                when = st.paused_at.isoformat(timespec="seconds") if st.paused_at else "-"
                events.append(
                    NewEvent(
                        kind="paused",
                        account=name,
                        ref=when,
                        detail=_("paused since {time}: {reason}").format(
                            time=self._local(st.paused_at) if st.paused_at else "-",
                            reason=st.paused_reason,
                        ),
                    )
                )
        if "token_expiry" in kinds:
            horizon = now + timedelta(days=self.config.token_expiry_days)
            for name, account in enabled.items():
                learnt = states.get(name)
                expires = (learnt.token_expires_at if learnt else None) or account.token_expires_at
                if expires is None or expires > horizon:
                    continue
                expired = expires <= now
                stage = "expired" if expired else "soon"
                events.append(
                    NewEvent(
                        kind="token_expiry",
                        account=name,
                        ref=f"{expires.isoformat(timespec='seconds')}:{stage}",
                        detail=(
                            _("the token expired {time}")
                            if expired
                            else _("the token expires {time}")
                        ).format(time=self._local(expires)),
                    )
                )
        if "late" in kinds:
            cutoff = now - timedelta(minutes=self.config.late_minutes)
            # A paused account has its own mail; a disabled one is not published at all.
            active = [name for name in enabled if name not in paused]
            for row in self.ops.late(cutoff, accounts=active):
                minutes = int((now - row.due_at).total_seconds() // 60)
                events.append(
                    NewEvent(
                        kind="late",
                        account=row.account,
                        ref=f"{row.id}:{row.due_at.isoformat(timespec='seconds')}",
                        delivery_id=row.id,
                        post_id=row.post_id,
                        detail=ngettext(
                            'post {post} "{title}": due {time}, {n} minute late',
                            'post {post} "{title}": due {time}, {n} minutes late',
                            minutes,
                        ).format(
                            post=row.post_id,
                            title=row.title,
                            time=self._local(row.due_at),
                            n=minutes,
                        ),
                    )
                )
        new = self.ops.record_events(events, now=now)
        if new:
            log.info("alert_events", found=new)
        return new

    # -- mailing ---------------------------------------------------------------------------
    def mail_immediate(self, now: datetime) -> tuple[int, int]:
        """One mail per (kind, account) with unmailed events whose throttle window passed."""
        events = self._still_relevant(
            self.ops.unsent_events(column="mailed_at", kinds=self.config.events), now
        )
        throttle = timedelta(minutes=self.config.throttle_minutes)
        sent = failed = 0
        for (kind, account), group in groupby(
            sorted(events, key=lambda e: (e.kind, e.account, e.id)),
            key=lambda e: (e.kind, e.account),
        ):
            batch = list(group)
            previous = self.ops.claim_send(kind, account, now=now, last_before=now - throttle)
            if previous is None:
                continue  # mailed within the hour: these wait for the next mail
            subject = self._subject(
                _("{what} on {account}").format(what=kind_label(kind), account=account)
                + (f" ({len(batch)})" if len(batch) > 1 else "")
            )
            body = self._body([(kind, batch)])
            if self._send(subject, body, kind=kind, account=account):
                self.ops.mark_events([e.id for e in batch], column="mailed_at", now=now)
                sent += 1
            else:
                self.ops.release_send(kind, account, claimed_at=now, previous=previous)
                failed += 1
        return sent, failed

    def digest_due_since(self, now: datetime) -> datetime:
        """The most recent digest time (site time zone) at or before ``now``."""
        zone = self.settings.site.zone
        local = now.astimezone(zone)
        hour, minute = (int(part) for part in self.config.digest_time.split(":"))
        at = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if at > local:
            at = (local - timedelta(days=1)).replace(
                hour=hour, minute=minute, second=0, microsecond=0
            )
        return at.astimezone(now.tzinfo)

    def mail_digest(self, now: datetime) -> tuple[int, int]:
        """The daily digest of every event not digested yet (none if there are none)."""
        events = self.ops.unsent_events(column="digested_at", kinds=self.config.events)
        if not events:
            return 0, 0
        due_since = self.digest_due_since(now)
        previous = self.ops.claim_send("digest", "", now=now, last_before=due_since)
        if previous is None:
            return 0, 0
        by_kind = [
            (kind, list(group))
            for kind, group in groupby(
                sorted(events, key=lambda e: (e.kind, e.account, e.id)), key=lambda e: e.kind
            )
        ]
        subject = self._subject(
            ngettext("daily digest: {n} event", "daily digest: {n} events", len(events)).format(
                n=len(events)
            )
        )
        if self._send(subject, self._body(by_kind), kind="digest", account=""):
            self.ops.mark_events([e.id for e in events], column="digested_at", now=now)
            return 1, 0
        self.ops.release_send("digest", "", claimed_at=now, previous=previous)
        return 0, 1

    def _still_relevant(self, events: list[StoredEvent], now: datetime) -> list[StoredEvent]:
        """Drop ``unknown`` events the daemon has settled meanwhile (marked as told)."""
        unknown = [e for e in events if e.kind == "unknown" and e.delivery_id is not None]
        if not unknown:
            return events
        states = self.ops.states_of({e.delivery_id for e in unknown if e.delivery_id})
        settled = [e for e in unknown if states.get(e.delivery_id or 0) != "unknown"]
        if not settled:
            return events
        gone = {e.id for e in settled}
        self.ops.mark_events(gone, column="mailed_at", now=now)
        return [e for e in events if e.id not in gone]

    def _send(self, subject: str, body: str, *, kind: str, account: str) -> bool:
        try:
            self.send(self.smtp, to=self.config.to, subject=subject, body=body)
        except CrosspostError as error:
            log.error("alert_mail_failed", kind=kind, account=account or None, error=error.message)
            return False
        log.info("alert_mailed", kind=kind, account=account or None, to=len(self.config.to))
        return True

    def _subject(self, text: str) -> str:
        site = self.settings.site.name or self.settings.site.url
        return f"[crosspost] {site}: {text}"

    def _body(self, sections: Sequence[tuple[str, list[StoredEvent]]]) -> str:
        lines: list[str] = []
        for kind, events in sections:
            lines.append(f"{kind_label(kind)}:")
            for event in events[:LISTED]:
                where = f"{event.account}: " if event.account else ""
                lines.append(f"  - {where}{scrub(event.detail)}")
            if len(events) > LISTED:
                lines.append(
                    "  " + _("… and {n} more (crosspost status)").format(n=len(events) - LISTED)
                )
            lines.append("")
            lines.append(textwrap.fill(advice(kind), width=72, break_on_hyphens=False))
            lines.append("")
        footer = _(
            "This mail was sent by crosspost at {site}. At most one mail per kind and "
            "account goes out every {minutes} minutes; `crosspost status` shows the "
            "current state."
        ).format(
            site=self.settings.site.url,
            minutes=self.config.throttle_minutes,
        )
        lines.append(textwrap.fill(footer, width=72, break_on_hyphens=False))
        return "\n".join(lines) + "\n"

    def _local(self, when: datetime) -> str:
        return when.astimezone(self.settings.site.zone).strftime("%Y-%m-%d %H:%M %Z")


def alerts_enabled(settings: Settings) -> bool:
    return settings.smtp is not None and bool(settings.alerts.to)
