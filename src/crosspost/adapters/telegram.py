"""Telegram: a bot posts each delivery to one channel (or group) through the Bot API.

Every request goes to ``/bot<token>/<method>``: the token is part of every URL,
so the HTTP client is told to redact it from every message it builds, and no
message here ever shows a URL.

* Text alone: ``sendMessage`` with ``link_preview_options.url`` set to the
  canonical link, so the preview card shows the association's page even when
  the text holds other links.
* The canonical link is a **link entity** of its own (``entities`` /
  ``caption_entities``: type ``url`` on exactly its UTF-16 span, see
  :func:`link_entities`), so it is clickable in full even where Telegram's own
  URL detection would stop early (a closing parenthesis, an umlaut); other URLs
  in the text Telegram still detects itself.
* With images: ``sendPhoto`` (one) or ``sendMediaGroup`` (2-10, the caption on
  the first), uploaded in the same multipart request. Telegram has **no alt
  field**, so :func:`telegram_caption` writes one ``Bild: <alt>`` line per image
  into the caption, before the link. The caption keeps within 1024 UTF-16 code
  units; enqueue measures the same function's result (see ``compose``).

Never twice: Telegram has no idempotency key and a bot cannot read a channel's
history, so when the answer to a send is lost nobody can tell whether it
landed. The delivery stays ``unknown`` for the admin (``idempotent_resend`` and
``can_reconcile`` are both False); the message id is stored as soon as the
answer comes.

Errors come as ``{"ok": false, "error_code": N, "description": …, "parameters":
{"retry_after": N}}``: 429 waits ``retry_after`` seconds, 401/403 (revoked
token, bot removed from the channel) pause the account, and so do the 400s that
mean the configured chat is wrong; any other 400 rejects the post. Bots can
delete their messages only within 48 hours; the Bot API has no metrics.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx

from crosspost.adapters._client import ClientAdapter
from crosspost.adapters._files import read_image
from crosspost.adapters._http import HttpClient, dig, json_body
from crosspost.compose import telegram_caption
from crosspost.config import TelegramAccount
from crosspost.counting import DEFAULT_LIMITS, TELEGRAM_CAPTION_LIMIT, count_telegram
from crosspost.exceptions import AuthError, PlatformError, Rejected, Transient, UnknownOutcome
from crosspost.i18n import _
from crosspost.models import AccountInfo, Media, PublishRequest, PublishResult

if TYPE_CHECKING:
    from crosspost.config import AccountBase
    from crosspost.inbox import Fetched, InteractionPage, PostRef, ReplyTarget

#: the word before each alt text in a caption. Published content in the post's language,
#: deliberately not translated: enqueue and the daemon must build the same caption.
#: images in one album (``sendMediaGroup`` takes 2-10)
MAX_IMAGES = 10
#: the Bot API's upload limit for photos
MAX_PHOTO_BYTES = 10 * 1024 * 1024
TEXT_LIMIT = DEFAULT_LIMITS["telegram"]
#: what Telegram says when a message may no longer be deleted (the 48-hour rule)
_NOT_DELETABLE = "can't be deleted"
_GONE = "message to delete not found"
#: 400s that hold for every post of the account (wrong chat, missing rights): pause it
_ACCOUNT_PROBLEMS = ("chat not found", "need administrator rights", "not enough rights")


def retry_after(response: httpx.Response, now: datetime) -> datetime | None:
    """Telegram's flood-control hint (``parameters.retry_after`` seconds) on a 429."""
    if response.status_code != 429:
        return None
    seconds = dig(json_body(response), "parameters", "retry_after")
    if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and seconds >= 0:
        return now + timedelta(seconds=seconds)
    return None


class TelegramAdapter(ClientAdapter[HttpClient]):
    platform = "telegram"
    idempotent_resend = False
    can_reconcile = False

    config: TelegramAccount

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.config, TelegramAccount):
            raise TypeError("TelegramAdapter needs a TelegramAccount")

    def connect(self) -> HttpClient:
        token = self.configured_secret(
            _("accounts.{account}: no bot token").format(account=self.name)
        )
        return HttpClient(
            f"{self.config.api_url}/bot{token}",
            headers={"Accept": "application/json"},
            transport=self._transport,
            timeout=self._timeout,
            secrets=[token],
            reset_parser=retry_after,
        )

    @property
    def chat(self) -> str | int:
        """The configured chat as the Bot API wants it: ``@name`` or a numeric id."""
        chat = self.config.chat.strip()
        try:
            return int(chat)
        except ValueError:
            return chat

    # publishing

    async def publish(self, request: PublishRequest) -> PublishResult:
        if not request.media:
            self._check_length(count_telegram(request.text), TEXT_LIMIT, _("text"))
            body: dict[str, Any] = {"chat_id": self.chat, "text": request.text}
            if request.link:
                body["link_preview_options"] = {"url": request.link}
            entities = link_entities(request.text, request.link)
            if entities:
                body["entities"] = entities
            message = await self._call("POST", "sendMessage", json=body)
            return self._result([message])
        if len(request.media) > MAX_IMAGES:
            raise Rejected(
                _("Telegram takes at most {max} images in one post, not {count}").format(
                    max=MAX_IMAGES, count=len(request.media)
                ),
                sent=False,
            )
        caption = telegram_caption(request.text, [m.alt for m in request.media], request.link)
        self._check_length(count_telegram(caption), TELEGRAM_CAPTION_LIMIT, _("caption"))
        entities = link_entities(caption, request.link)
        photos = [await _read_photo(media) for media in request.media]
        if len(photos) == 1:
            fields = {"chat_id": str(self.chat), "caption": caption}
            if entities:
                fields["caption_entities"] = json.dumps(entities)
            message = await self._call("POST", "sendPhoto", data=fields, files={"photo": photos[0]})
            return self._result([message])
        first: dict[str, Any] = {"caption": caption}
        if entities:
            first["caption_entities"] = entities
        album: list[dict[str, Any]] = [
            {"type": "photo", "media": f"attach://photo{n}"} | (first if n == 0 else {})
            for n in range(len(photos))
        ]
        answer = await self._call(
            "POST",
            "sendMediaGroup",
            data={"chat_id": str(self.chat), "media": json.dumps(album, ensure_ascii=False)},
            files=[(f"photo{n}", photo) for n, photo in enumerate(photos)],
        )
        return self._result(answer if isinstance(answer, list) else [answer])

    def _check_length(self, length: int, limit: int, what: str) -> None:
        if length > limit:
            raise Rejected(
                _(
                    "the Telegram {what} is {length} UTF-16 code units long, the limit is {limit}"
                ).format(what=what, length=length, limit=limit),
                sent=False,
            )

    def _result(self, messages: list[Any]) -> PublishResult:
        ids = [dig(m, "message_id") for m in messages]
        if not ids or not all(isinstance(i, int) and i > 0 for i in ids):
            raise UnknownOutcome(_("Telegram answered without a message id"))
        chat = dig(messages[0], "chat")
        chat_id = dig(chat, "id")
        where = str(chat_id) if isinstance(chat_id, int) else str(self.chat)
        username = dig(chat, "username")
        return PublishResult(
            remote_id=f"{where}/{','.join(str(i) for i in ids)}",
            remote_url=self._message_url(username, where, ids[0]),
        )

    def _message_url(self, username: Any, chat_id: str, message_id: int) -> str | None:
        if not isinstance(username, str) or not username:
            configured = self.config.chat.strip()
            username = configured[1:] if configured.startswith("@") else None
        if username:
            return f"https://t.me/{username}/{message_id}"
        if chat_id.startswith("-100"):  # a private channel: the link works for its members
            return f"https://t.me/c/{chat_id[4:]}/{message_id}"
        return None

    # -- the inbox (issue 9) -----------------------------------------------------------------
    # Bots cannot read a channel's comments. They arrive as messages in the channel's linked
    # discussion group, each a reply to the automatic forward of the channel post; a bot that
    # is a member of that group (with privacy mode off, or as its administrator) receives them
    # through getUpdates. Only with ``fetch_comments = true``: getUpdates hands every update
    # out once, so it suits a bot that crosspost alone uses.
    fetches_interactions = True
    updates_page = 100

    @classmethod
    def inbox_enabled(cls, config: AccountBase) -> bool:
        return bool(getattr(config, "fetch_comments", False))

    async def interactions(
        self, cursor: str | None, posts: Sequence[PostRef], *, since: datetime
    ) -> AsyncIterator[InteractionPage]:
        """Comments in the discussion group (``getUpdates``); the cursor is the last
        update id stored, confirmed to Telegram only by the next call's ``offset``."""
        from crosspost.inbox import InteractionPage

        offset = int(cursor) + 1 if cursor and cursor.lstrip("-").isdigit() else None
        while True:
            body: dict[str, Any] = {
                "limit": self.updates_page,
                "timeout": 0,
                "allowed_updates": ["message"],
            }
            if offset is not None:
                body["offset"] = offset
            updates = await self._call("POST", "getUpdates", json=body)
            if not isinstance(updates, list):
                raise Transient(_("getUpdates: the answer is not a list"))
            ids = [u["update_id"] for u in updates if isinstance(dig(u, "update_id"), int)]
            if not ids:
                return
            found = [
                comment
                for update in updates
                if (comment := self._comment(dig(update, "message"), since)) is not None
            ]
            yield InteractionPage(found, str(max(ids)))
            if len(updates) < self.updates_page:
                return
            offset = max(ids) + 1

    def _comment(self, message: Any, since: datetime) -> Fetched | None:
        """A discussion-group message answering one of the channel's posts, or None."""
        from crosspost.inbox import Fetched, InteractionKind

        chat, replied = dig(message, "chat"), dig(message, "reply_to_message")
        if dig(chat, "type") not in ("group", "supergroup") or not isinstance(replied, dict):
            return None
        origin = dig(replied, "forward_origin")
        origin_chat = dig(origin, "chat") if dig(origin, "type") == "channel" else None
        if not replied.get("is_automatic_forward") or not self._is_channel(origin_chat):
            return None
        text = dig(message, "text") or dig(message, "caption")
        message_id, chat_id, date = (
            dig(message, "message_id"),
            dig(chat, "id"),
            dig(message, "date"),
        )
        if not isinstance(text, str) or not isinstance(message_id, int):
            return None
        if not isinstance(chat_id, int) or not isinstance(date, int):
            return None
        created = datetime.fromtimestamp(date, UTC)
        if created < since or self._is_channel(dig(message, "sender_chat")):
            return None
        sender = dig(message, "from")
        username = dig(sender, "username")
        handle = (
            f"@{username}" if isinstance(username, str) else str(dig(sender, "first_name") or "")
        )
        channel_post = dig(origin, "message_id")
        return Fetched(
            remote_id=f"{chat_id}/{message_id}",
            kind=InteractionKind.COMMENT,
            handle=handle,
            text=text,
            url=self._message_url(dig(chat, "username"), str(chat_id), message_id),
            created_at=created,
            parent_remote_id=f"{dig(origin_chat, 'id')}/{channel_post}",
            reply_ref={"chat_id": str(chat_id), "message_id": str(message_id)},
        )

    def _is_channel(self, chat: Any) -> bool:
        if not isinstance(chat, dict):
            return False
        configured = self.chat
        if isinstance(configured, int):
            return chat.get("id") == configured
        username = chat.get("username")
        return isinstance(username, str) and f"@{username}".lower() == configured.lower()

    async def reply(self, target: ReplyTarget, text: str, *, key: str) -> PublishResult:
        """A message in the discussion group, as a reply to the comment."""
        self._check_length(count_telegram(text), TEXT_LIMIT, _("text"))
        chat_id, message_id = target.reply_ref.get("chat_id"), target.reply_ref.get("message_id")
        if not chat_id or not message_id:
            raise Rejected(_("the interaction lacks the chat and message to reply to"), sent=False)
        message = await self._call(
            "POST",
            "sendMessage",
            json={
                "chat_id": int(chat_id),
                "text": text,
                "reply_parameters": {"message_id": int(message_id)},
            },
        )
        sent_id = dig(message, "message_id")
        if not isinstance(sent_id, int):
            raise UnknownOutcome(_("Telegram answered without a message id"))
        return PublishResult(
            remote_id=f"{chat_id}/{sent_id}",
            remote_url=self._message_url(dig(message, "chat", "username"), chat_id, sent_id),
        )

    # the rest of the port

    async def delete(self, remote_id: str) -> None:
        """Delete the message(s) of a delivery; gone already counts as done.

        Bots may delete only messages younger than 48 hours: Telegram's "message
        can't be deleted" becomes :class:`Rejected` naming that rule.
        """
        chat, ids = _parse_remote_id(remote_id)
        try:
            if len(ids) == 1:
                await self._call(
                    "POST", "deleteMessage", json={"chat_id": chat, "message_id": ids[0]}
                )
            else:
                await self._call(
                    "POST", "deleteMessages", json={"chat_id": chat, "message_ids": ids}
                )
        except UnknownOutcome as exc:
            # Deleting twice is harmless, so a lost answer only means: try again.
            raise Transient(exc.message) from exc
        except Rejected as exc:
            if _GONE in exc.message:
                return
            if _NOT_DELETABLE in exc.message:
                raise Rejected(
                    _(
                        "Telegram lets bots delete messages only within 48 hours of sending "
                        "(and only with the right to delete messages); delete {remote_id} "
                        "in the Telegram app instead"
                    ).format(remote_id=remote_id),
                    http_status=exc.http_status,
                ) from exc
            raise

    async def followers(self) -> int | None:
        count = await self._call("GET", "getChatMemberCount", params={"chat_id": self.chat})
        return count if isinstance(count, int) and not isinstance(count, bool) else None

    async def verify(self) -> AccountInfo:
        """The bot's token works, the chat exists, and the bot may post there."""
        bot = await self._call("GET", "getMe")
        bot_id, bot_name = dig(bot, "id"), dig(bot, "username")
        if not isinstance(bot_id, int):
            raise Transient(_("Telegram's getMe names no bot"))
        chat = await self._call("GET", "getChat", params={"chat_id": self.chat})
        member = await self._call(
            "GET", "getChatMember", params={"chat_id": self.chat, "user_id": bot_id}
        )
        if not _may_post(dig(chat, "type"), member):
            raise AuthError(
                _(
                    "the bot @{bot} may not post in {chat}: make it an administrator of the "
                    "channel with the right to post messages"
                ).format(bot=bot_name, chat=self.config.chat)
            )
        username, title = dig(chat, "username"), dig(chat, "title")
        followers = await self.followers()
        return AccountInfo(
            name=f"@{username}" if isinstance(username, str) else str(title or self.config.chat),
            url=f"https://t.me/{username}" if isinstance(username, str) else None,
            detail=_("{title} (bot @{bot})").format(title=title or self.config.chat, bot=bot_name),
            followers=followers,
        )

    # one Bot API call

    async def _call(self, method: str, name: str, **kwargs: Any) -> Any:
        """Call Bot API method ``name``; its ``result``, or the mapped error."""
        response = await self.http.request(method, f"/{name}", classify=self._classify, **kwargs)
        answer = json_body(response)
        if not isinstance(answer, dict) or answer.get("ok") is not True or "result" not in answer:
            raise _unreadable(name, response.status_code, method)
        return answer["result"]

    def _classify(self, response: httpx.Response) -> PlatformError | None:
        """Telegram's own error envelope, where it means more than its HTTP status."""
        answer = json_body(response)
        description = dig(answer, "description")
        text = description if isinstance(description, str) else ""
        status = response.status_code
        migrated = dig(answer, "parameters", "migrate_to_chat_id")
        if isinstance(migrated, int):
            return AuthError(
                _(
                    "Telegram: the group is now a supergroup; set accounts.{account}.chat = "
                    '"{chat}"'
                ).format(account=self.name, chat=migrated),
                http_status=status,
            )
        if status == 404:
            # The Bot API answers 404 to a malformed token (and to a wrong base_url).
            return AuthError(
                _("Telegram: {status} {text}: check the bot token and base_url").format(
                    status=status, text=text or "Not Found"
                ),
                http_status=status,
            )
        if status == 400 and any(what in text for what in _ACCOUNT_PROBLEMS):
            return AuthError(
                _(
                    "Telegram: {text}: check accounts.{account}.chat and that the bot is an "
                    "administrator of the channel"
                ).format(text=text, account=self.name),
                http_status=status,
            )
        return None


def link_entities(text: str, link: str | None) -> list[dict[str, Any]]:
    """The ``url`` entity on the canonical link's last occurrence in ``text`` (where compose
    puts it), offset and length in UTF-16 code units as the Bot API counts; none without it."""
    at = text.rfind(link) if link else -1
    if not link or at < 0:
        return []
    return [{"type": "url", "offset": _utf16(text[:at]), "length": _utf16(link)}]


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _may_post(chat_type: Any, member: Any) -> bool:
    status = dig(member, "status")
    if chat_type == "channel":
        return status == "creator" or (
            status == "administrator" and dig(member, "can_post_messages") is True
        )
    if status in ("left", "kicked"):
        return False
    return status != "restricted" or dig(member, "can_send_messages") is True


async def _read_photo(media: Media) -> tuple[str, bytes, str]:
    data = await read_image(media)
    if len(data) > MAX_PHOTO_BYTES:
        raise Rejected(
            _("{path}: Telegram takes photos up to 10 MB, this one has {size} bytes").format(
                path=media.path, size=len(data)
            ),
            sent=False,
        )
    return media.path.name, data, media.mime


def _parse_remote_id(remote_id: str) -> tuple[str | int, list[int]]:
    """``-1001234567890/42`` or ``@channel/42,43`` as (chat, message ids)."""
    chat, _sep, tail = remote_id.rpartition("/")
    try:
        ids = [int(part) for part in tail.split(",")]
    except ValueError:
        ids = []
    if not chat or not ids:
        raise Rejected(
            _("{remote_id!r} is not a Telegram message id (chat/message)").format(
                remote_id=remote_id
            ),
            sent=False,
        )
    try:
        return int(chat), ids
    except ValueError:
        return chat, ids


def _unreadable(name: str, status: int, method: str) -> PlatformError:
    message = _("Telegram's answer to {method} is not readable (HTTP {status})").format(
        method=name, status=status
    )
    if method == "GET":
        return Transient(message, http_status=status)
    return UnknownOutcome(message, http_status=status)


ADAPTER = TelegramAdapter
