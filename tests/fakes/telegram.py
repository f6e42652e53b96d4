"""A Telegram Bot API server with one bot and one channel, checking every call
against ``telegram-bot-api.json``.

Serves what crosspost uses, at ``/bot<token>/<method>`` by GET or POST:
``sendMessage``, ``sendPhoto``, ``sendMediaGroup``, ``deleteMessage``,
``deleteMessages``, ``getMe``, ``getChat``, ``getChatMember``,
``getChatMemberCount``. Any other method answers 404 as the Bot API does.

Every call is validated against the method's fields in the contract file
(parameters from the query string, a JSON body, a urlencoded or a multipart
form): an unknown field, a missing required field or a value of the wrong type
(``Integer``, ``String``, ``Boolean``, ``InputFile``, ``Array of …`` and every
object type, recursively, including ``attach://`` references) is answered
``{"ok": false, "error_code": 400, "description": "Bad Request: …"}`` and
recorded in ``validation_errors``. (The real Bot API silently ignores unknown
fields; the fake refuses them so a misspelt field cannot pass unnoticed.)
The fake's own ``result`` is checked against the method's return type.

As on Telegram: a wrong token answers 401 ``Unauthorized``; a bot that is not
an administrator allowed to post answers 403 ``Forbidden: bot is not a member
of the channel chat`` or 400 ``need administrator rights``; text counts in
UTF-16 code units after trimming (4096, caption 1024); a message older than 48
hours "can't be deleted"; an unknown chat is "chat not found". :func:`flood`
builds the 429 flood-control answer with ``parameters.retry_after``.

Run it alone: ``python -m tests.fakes.telegram --port 0``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.harness import OnPlatform, ServedAccount, register_server
from tests.fakes.server import (
    ContractFile,
    FakeRequest,
    FakeResponse,
    FakeServer,
    Fault,
    FormPart,
    json_response,
    main,
    skip_without_spec,
    spec_path,
    status,
)

SPEC_NAME = "telegram-bot-api.json"
DEFAULT_TOKEN = "7000000001:AAHfakeTelegramToken-0123456789abcdef"
BOT_ID = 7000000001
CHANNEL_ID = -1001234567890
GROUP_ID = -1009876543210
DELETE_WINDOW = 48 * 3600

#: the Bot API contract (methods and types), read once per process
telegram_spec: ContractFile[dict[str, Any]] = ContractFile(SPEC_NAME, lambda data: data)


def utf16_length(text: str) -> int:
    """Telegram's count: UTF-16 code units of the trimmed text (entities parse nothing here)."""
    return len(text.strip().encode("utf-16-le")) // 2


def _text_refused(text: str) -> FakeResponse | None:
    """Telegram's answer to a message text it does not send: empty, or over 4096 units."""
    if not text.strip():
        return _error(400, "Bad Request: message text is empty")
    if utf16_length(text) > 4096:
        return _error(400, "Bad Request: message is too long")
    return None


def utf16_slice(text: str, offset: int, length: int) -> str:
    """The part of ``text`` an entity's ``offset``/``length`` (UTF-16 code units) covers."""
    raw = text.encode("utf-16-le")
    return raw[2 * offset : 2 * (offset + length)].decode("utf-16-le", errors="replace")


def entities_refused(text: str | None, value: Any) -> tuple[list[dict[str, Any]], str | None]:
    """The entities sent with a text or caption, or why Telegram would not take them: each
    must lie within the text, and a ``url`` entity must cover a whole URL (no space, an
    http(s) scheme) — the check that the client counted UTF-16 code units, not characters."""
    entities = decoded(value, list) if value is not None else []
    if not isinstance(entities, list):
        return [], "Bad Request: can't parse entities JSON object"
    units = len((text or "").encode("utf-16-le")) // 2
    for entity in entities:
        offset, length = entity.get("offset", -1), entity.get("length", 0)
        if offset < 0 or length < 1 or offset + length > units:
            return [], f"Bad Request: entity {entity} lies outside the text"
        covered = utf16_slice(text or "", offset, length)
        if entity.get("type") == "url" and not re.fullmatch(r"https?://\S+", covered):
            return [], f"Bad Request: url entity covers {covered!r}, not a URL"
    return entities, None


def flood(retry_after: int = 1) -> Fault:
    """The 429 Telegram's flood control answers, with ``parameters.retry_after``."""
    return status(
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": f"Too Many Requests: retry after {retry_after}",
            "parameters": {"retry_after": retry_after},
        },
    )


# --- the contract ------------------------------------------------------------------------------

_INTEGER = re.compile(r"-?\d+")
_FLOAT = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_MISSING = object()


class Contract:
    """Checks parameters and results against the Bot API's fields and types.

    A parameter from a query string or a form is a string standing for its type
    (``"42"``, ``"true"``, JSON for objects and arrays); inside JSON, and in
    results, every value must have its type itself.
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        self.methods: dict[str, Any] = spec["methods"]
        self.types: dict[str, Any] = spec["types"]

    def check_call(
        self,
        method: str,
        params: dict[str, Any],
        files: dict[str, FormPart],
        *,
        form: Collection[str] = (),
    ) -> list[str]:
        """Why ``method`` refuses these parameters.

        ``files`` are the multipart file parts; ``form`` names the parameters that came
        as text (query string, urlencoded or multipart fields).
        """
        spec = self.methods.get(method)
        if spec is None:
            return [f"the Bot API has no method {method}"]
        fields = {f["name"]: f for f in spec.get("fields", [])}
        errors = [f"{method}: unknown field {name!r}" for name in params if name not in fields]
        attached: set[str] = set()
        for name, spec_field in fields.items():
            where = f"{method}.{name}"
            if name in files:
                if "InputFile" not in spec_field["types"]:
                    errors.append(
                        f"{where}: a file where {' or '.join(spec_field['types'])} belongs"
                    )
                attached.add(name)
                if name in params:
                    errors.append(f"{where}: given both as a file and as a value")
                continue
            value = params.get(name, _MISSING)
            if value is _MISSING:
                if spec_field["required"]:
                    errors.append(f"{method}: required field {name!r} is missing")
                continue
            errors += self.check_value(
                spec_field["types"], value, where, attached, form=name in form
            )
        for name in sorted(files.keys() - attached):
            errors.append(f"{method}: file part {name!r} is neither a field nor attach://-ed")
        for name in sorted(attached - files.keys()):
            errors.append(f"{method}: attach://{name} names no uploaded file part")
        return errors

    def check_result(self, method: str, result: Any) -> list[str]:
        """Why the fake's ``result`` is not what ``method`` returns (a bug in the fake)."""
        returns = self.methods[method].get("returns", [])
        return self.check_value(returns, result, f"{method} result", set(), form=False)

    def check_value(
        self, types: list[str], value: Any, where: str, attached: set[str], *, form: bool
    ) -> list[str]:
        """Errors of ``value`` against the alternatives ``types`` (empty: one of them fits).

        ``attached`` collects the names that ``attach://`` strings refer to.
        """
        first: list[str] = []
        for kind in types:
            seen = set(attached)
            errors = self._check(kind, value, where, seen, form)
            if not errors:
                attached |= seen
                return []
            first = first or errors
        return first

    def _check(
        self, kind: str, value: Any, where: str, attached: set[str], form: bool
    ) -> list[str]:
        wrong = [f"{where}: expected {kind}, got {_shown(value)}"]
        if form and isinstance(value, str) and kind != "String":
            if kind == "Integer":
                return [] if _INTEGER.fullmatch(value) else wrong
            if kind == "Float":
                return [] if _FLOAT.fullmatch(value) else wrong
            if kind == "Boolean":
                return [] if value in ("true", "false") else wrong
            if kind == "InputFile":
                return [f"{where}: an InputFile must be uploaded as a multipart file part"]
            try:
                value = json.loads(value)
            except ValueError:
                return wrong
        if kind.startswith("Array of "):
            if not isinstance(value, list):
                return wrong
            inner = kind.removeprefix("Array of ")
            return [
                error
                for n, item in enumerate(value)
                for error in self.check_value([inner], item, f"{where}[{n}]", attached, form=False)
            ]
        if kind == "Integer":
            return [] if isinstance(value, int) and not isinstance(value, bool) else wrong
        if kind == "Float":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            return [] if ok else wrong
        if kind == "Boolean":
            return [] if isinstance(value, bool) else wrong
        if kind == "String":
            if not isinstance(value, str):
                return wrong
            if value.startswith("attach://"):
                attached.add(value.removeprefix("attach://"))
            return []
        if kind == "InputFile":
            return [f"{where}: an InputFile must be uploaded as a multipart file part"]
        spec = self.types.get(kind)
        if spec is None:
            return [f"{where}: the contract has no type {kind}"]
        if spec.get("subtypes"):
            return self.check_value(spec["subtypes"], value, where, attached, form=False)
        if not isinstance(value, dict):
            return wrong
        fields = {f["name"]: f for f in spec.get("fields", [])}
        errors = [f"{where}: {kind} has no field {k!r}" for k in value if k not in fields]
        for name, spec_field in fields.items():
            if name not in value:
                if spec_field["required"]:
                    errors.append(f"{where}: {kind} needs {name!r}")
                continue
            errors += self.check_value(
                spec_field["types"], value[name], f"{where}.{name}", attached, form=False
            )
        return errors


def decoded(value: Any, want: type) -> Any:
    """A form value (JSON text) as the object or array it stands for."""
    if isinstance(value, str) and want is not str:
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


# --- the fake ---------------------------------------------------------------------------------


@dataclass
class FakePhoto:
    filename: str | None
    content_type: str | None
    size: int


@dataclass
class FakeMessage:
    message_id: int
    date: int  # Unix time, as Telegram sends it
    text: str | None = None
    caption: str | None = None
    photos: list[FakePhoto] = field(default_factory=list)
    link_preview_url: str | None = None
    #: the entities the client sent with the text or caption
    entities: list[dict[str, Any]] = field(default_factory=list)
    media_group_id: str | None = None
    deleted: bool = False

    @property
    def content(self) -> str:
        return self.text if self.text is not None else self.caption or ""


Method = Callable[[dict[str, Any], dict[str, FormPart]], FakeResponse]


class TelegramFake(FakeServer):
    """One bot, administrator of one channel (``@staedtedreieck``)."""

    name = "telegram"
    METHODS = (
        "sendMessage",
        "sendPhoto",
        "sendMediaGroup",
        "deleteMessage",
        "deleteMessages",
        "getMe",
        "getChat",
        "getChatMember",
        "getChatMemberCount",
        "getUpdates",
    )

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        username: str | None = "staedtedreieck",
        bot_username: str = "staedtedreieck_bot",
        members: int = 1234,
        **server_options: Any,
    ) -> None:
        super().__init__(**server_options)
        self.contract = Contract(telegram_spec())
        #: the one valid bot token; change it to revoke the credential
        self.token = token
        self.username = username
        self.bot_username = bot_username
        self.members = members
        #: the bot's standing in the channel: "administrator", "member", "left", "kicked"
        self.bot_status = "administrator"
        self.can_post = True
        self.chat_id = CHANNEL_ID
        self.messages: dict[int, FakeMessage] = {}
        self._ids = itertools.count(101)
        self._groups = itertools.count(13_000_000_000_000_001)
        handlers: dict[str, Method] = {
            "sendMessage": self._send_message,
            "sendPhoto": self._send_photo,
            "sendMediaGroup": self._send_media_group,
            "deleteMessage": self._delete_message,
            "deleteMessages": self._delete_messages,
            "getMe": self._get_me,
            "getChat": self._get_chat,
            "getChatMember": self._get_chat_member,
            "getChatMemberCount": self._get_chat_member_count,
            "getUpdates": self._get_updates,
        }
        #: the channel's linked discussion group (comments arrive there), and the updates
        #: the bot has not confirmed yet (getUpdates), oldest first
        self.group_id = GROUP_ID
        self.group_username: str | None = "staedtedreieck_diskussion"
        self.group_messages: dict[int, dict[str, Any]] = {}
        self.updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(700_000_001)
        self._group_message_ids = itertools.count(1)
        #: the channel post each automatic forward in the group stands for
        self._forwards: dict[int, int] = {}
        self._handlers = handlers
        for method in self.METHODS:
            for verb in ("GET", "POST"):
                self.route(verb, f"/bot{{token}}/{method}", self._handle)
        for verb in ("GET", "POST"):
            self.route(verb, "/bot{token}/{method}", self._unknown_method)

    # what tests look at

    @property
    def posts(self) -> list[FakeMessage]:
        """Messages in the channel now (deleted ones left out), oldest first."""
        with self.lock:
            return [m for m in self.messages.values() if not m.deleted]

    def comment(
        self, channel_message_id: int, text: str, *, username: str | None = "erika_m"
    ) -> int:
        """A member's comment on a channel post, in the discussion group; its message id."""
        with self.lock:
            forward = next((g for g, c in self._forwards.items() if c == channel_message_id), None)
            if forward is None:
                post = self.messages[channel_message_id]
                forward = next(self._group_message_ids)
                self.group_messages[forward] = {
                    "message_id": forward,
                    "date": post.date,
                    "chat": self._group_json(),
                    "sender_chat": self._chat_json(),
                    "is_automatic_forward": True,
                    "forward_origin": {
                        "type": "channel",
                        "date": post.date,
                        "chat": self._chat_json(),
                        "message_id": channel_message_id,
                    },
                    "text": post.content,
                }
                self._forwards[forward] = channel_message_id
            message_id = next(self._group_message_ids)
            sender: dict[str, Any] = {"id": 5_550_001, "is_bot": False, "first_name": "Erika"}
            if username:
                sender["username"] = username
            message = {
                "message_id": message_id,
                "message_thread_id": forward,
                "from": sender,
                "date": int(time.time()),
                "chat": self._group_json(),
                "reply_to_message": dict(self.group_messages[forward]),
                "text": text,
            }
            self.group_messages[message_id] = message
            self.updates.append({"update_id": next(self._update_ids), "message": message})
            return message_id

    def replies_to(self, group_message_id: int) -> list[str]:
        """The texts the bot sent in the group in reply to ``group_message_id``."""
        with self.lock:
            return [
                m["text"]
                for m in self.group_messages.values()
                if m.get("from", {}).get("id") == BOT_ID
                and m.get("reply_to_message", {}).get("message_id") == group_message_id
            ]

    def _group_json(self) -> dict[str, Any]:
        group: dict[str, Any] = {
            "id": self.group_id,
            "type": "supergroup",
            "title": "Städtedreieck – Diskussion",
        }
        if self.group_username:
            group["username"] = self.group_username
        return group

    def _get_updates(self, params: dict[str, Any], files: dict[str, FormPart]) -> FakeResponse:
        offset = decoded(params.get("offset"), int)
        limit = decoded(params.get("limit"), int) or 100
        if not 1 <= limit <= 100:
            return _error(400, "Bad Request: limit must be 1 to 100")
        allowed = decoded(params.get("allowed_updates"), list)
        if isinstance(offset, int):
            # an update is confirmed once getUpdates is called with a higher offset
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        found = [u for u in self.updates if not allowed or any(kind in u for kind in allowed)]
        return _ok(found[:limit])

    def _reply_in_group(self, params: dict[str, Any]) -> FakeResponse:
        text = str(params["text"])
        refused = _text_refused(text)
        if refused:
            return refused
        reply = decoded(params.get("reply_parameters"), dict)
        replied_id = reply.get("message_id") if isinstance(reply, dict) else None
        replied = self.group_messages.get(replied_id) if isinstance(replied_id, int) else None
        if reply is not None and replied is None:
            return _error(400, "Bad Request: message to be replied not found")
        message: dict[str, Any] = {
            "message_id": next(self._group_message_ids),
            "from": self._bot_json(),
            "date": int(time.time()),
            "chat": self._group_json(),
            "text": text,
        }
        if replied is not None:
            message["reply_to_message"] = {
                k: v for k, v in replied.items() if k != "reply_to_message"
            }
        self.group_messages[message["message_id"]] = message
        return _ok(message)

    def age(self, message_id: int, hours: float) -> None:
        """Pretend message ``message_id`` was sent ``hours`` ago."""
        with self.lock:
            self.messages[message_id].date = int(time.time() - hours * 3600)

    def snapshot(self) -> dict[str, Any]:
        return {
            "messages": [
                {"message_id": m.message_id, "text": m.content, "photos": len(m.photos)}
                for m in self.posts
            ]
        }

    # validation and authentication

    def validate(self, request: FakeRequest) -> list[str]:
        method = request.path.rsplit("/", 1)[-1]
        try:
            params, files, form = _parameters(request)
        except ValueError as exc:
            return [f"{method}: {exc}"]
        return self.contract.check_call(method, params, files, form=form)

    def invalid(self, request: FakeRequest, errors: list[str]) -> FakeResponse:
        if request.route is None or request.route.endswith("/{method}"):
            return self.not_found(request)
        return _error(400, "Bad Request: " + "; ".join(errors))

    def not_found(self, request: FakeRequest) -> FakeResponse:
        return _error(404, "Not Found")

    def before(self, request: FakeRequest) -> FakeResponse | None:
        if request.params.get("token") != self.token:
            return _error(401, "Unauthorized")
        return None

    def check_response(self, request: FakeRequest, response: FakeResponse) -> list[str]:
        answer = json.loads(response.body) if response.body else None
        if not isinstance(answer, dict):
            return ["the answer is not a JSON object"]
        method = request.path.rsplit("/", 1)[-1]
        if answer.get("ok") is True and method in self.METHODS:
            return self.contract.check_result(method, answer.get("result"))
        needed = {"ok", "error_code", "description"}
        return [] if needed <= answer.keys() else [f"error envelope lacks {needed - answer.keys()}"]

    # dispatch

    def _handle(self, request: FakeRequest) -> FakeResponse:
        method = request.path.rsplit("/", 1)[-1]
        params, files, _form = _parameters(request)
        with self.lock:
            return self._handlers[method](params, files)

    def _unknown_method(self, request: FakeRequest) -> FakeResponse:
        return self.not_found(request)

    # chats and rights

    def _chat_json(self) -> dict[str, Any]:
        chat: dict[str, Any] = {
            "id": self.chat_id,
            "type": "channel",
            "title": "Zweckverband Städtedreieck",
        }
        if self.username:  # a private channel has no public @name
            chat["username"] = self.username
        return chat

    def _is_our_chat(self, chat_id: Any) -> bool:
        text = str(chat_id)
        named = self.username is not None and text.lower() == f"@{self.username}".lower()
        return text == str(self.chat_id) or named

    def _refuse_post(self, chat_id: Any) -> FakeResponse | None:
        if not self._is_our_chat(chat_id):
            return _error(400, "Bad Request: chat not found")
        if self.bot_status in ("left", "kicked"):
            return _error(403, "Forbidden: bot is not a member of the channel chat")
        if self.bot_status != "administrator" or not self.can_post:
            return _error(400, "Bad Request: need administrator rights in the channel chat")
        return None

    # sending

    def _message_json(self, message: FakeMessage) -> dict[str, Any]:
        data: dict[str, Any] = {
            "message_id": message.message_id,
            "date": message.date,
            "chat": self._chat_json(),
            "sender_chat": self._chat_json(),
        }
        if message.text is not None:
            data["text"] = message.text
            url = re.search(r"https?://\S+", message.text)
            if message.entities:
                data["entities"] = message.entities
            elif url:  # Telegram's own URL detection
                data["entities"] = [_url_entity(message.text, url.start(), url.end())]
            if message.link_preview_url:
                data["link_preview_options"] = {"url": message.link_preview_url}
        if message.photos:
            photo = message.photos[0]
            data["photo"] = [
                {
                    "file_id": f"AgACAgIAAx0{message.message_id:08d}",
                    "file_unique_id": f"AQAD{message.message_id:06d}",
                    "width": 1280,
                    "height": 960,
                    "file_size": photo.size,
                }
            ]
        if message.caption is not None:
            data["caption"] = message.caption
            if message.entities:
                data["caption_entities"] = message.entities
        if message.media_group_id is not None:
            data["media_group_id"] = message.media_group_id
        return data

    def _new_message(self, **content: Any) -> FakeMessage:
        message = FakeMessage(message_id=next(self._ids), date=int(time.time()), **content)
        self.messages[message.message_id] = message
        return message

    def _send_message(self, params: dict[str, Any], files: dict[str, FormPart]) -> FakeResponse:
        if str(params["chat_id"]) == str(self.group_id):
            return self._reply_in_group(params)
        text = str(params["text"])
        refused = self._refuse_post(params["chat_id"]) or _text_refused(text)
        if refused:
            return refused
        entities, bad = entities_refused(text, params.get("entities"))
        if bad:
            return _error(400, bad)
        preview = decoded(params.get("link_preview_options"), dict)
        url = preview.get("url") if isinstance(preview, dict) else None
        message = self._new_message(text=text, link_preview_url=url, entities=entities)
        return _ok(self._message_json(message))

    def _caption_refused(self, caption: str | None) -> FakeResponse | None:
        if caption is not None and utf16_length(caption) > 1024:
            return _error(400, "Bad Request: message caption is too long")
        return None

    def _send_photo(self, params: dict[str, Any], files: dict[str, FormPart]) -> FakeResponse:
        refused = self._refuse_post(params["chat_id"])
        if refused:
            return refused
        caption = params.get("caption")
        refused = self._caption_refused(caption)
        if refused:
            return refused
        entities, bad = entities_refused(caption, params.get("caption_entities"))
        if bad:
            return _error(400, bad)
        upload = files.get("photo")
        if upload is None:
            return _error(400, "Bad Request: there is no photo in the request")
        if not (upload.content_type or "").startswith("image/"):
            return _error(400, "Bad Request: IMAGE_PROCESS_FAILED")
        photo = FakePhoto(upload.filename, upload.content_type, len(upload.data))
        message = self._new_message(caption=caption, photos=[photo], entities=entities)
        return _ok(self._message_json(message))

    def _send_media_group(self, params: dict[str, Any], files: dict[str, FormPart]) -> FakeResponse:
        refused = self._refuse_post(params["chat_id"])
        if refused:
            return refused
        album = decoded(params["media"], list)
        if len(album) < 2:
            return _error(400, "Bad Request: too few media in media group")
        if len(album) > 10:
            return _error(400, "Bad Request: too many messages to send as an album")
        for item in album:
            refused = self._caption_refused(item.get("caption"))
            if refused:
                return refused
            bad = entities_refused(item.get("caption"), item.get("caption_entities"))[1]
            if bad:
                return _error(400, bad)
        group = str(next(self._groups))
        sent = []
        for item in album:
            upload = files[item["media"].removeprefix("attach://")]
            photo = FakePhoto(upload.filename, upload.content_type, len(upload.data))
            message = self._new_message(
                caption=item.get("caption"),
                photos=[photo],
                media_group_id=group,
                entities=list(item.get("caption_entities") or []),
            )
            sent.append(self._message_json(message))
        return _ok(sent)

    # deleting

    def _deletable(self, message_id: int) -> FakeResponse | None:
        message = self.messages.get(message_id)
        if message is None or message.deleted:
            return _error(400, "Bad Request: message to delete not found")
        if time.time() - message.date > DELETE_WINDOW:
            return _error(400, "Bad Request: message can't be deleted")
        return None

    def _delete_message(self, params: dict[str, Any], files: dict[str, FormPart]) -> FakeResponse:
        if not self._is_our_chat(params["chat_id"]):
            return _error(400, "Bad Request: chat not found")
        message_id = int(params["message_id"])
        refused = self._deletable(message_id)
        if refused:
            return refused
        self.messages[message_id].deleted = True
        return _ok(True)

    def _delete_messages(self, params: dict[str, Any], files: dict[str, FormPart]) -> FakeResponse:
        if not self._is_our_chat(params["chat_id"]):
            return _error(400, "Bad Request: chat not found")
        ids = [int(i) for i in decoded(params["message_ids"], list)]
        if not 1 <= len(ids) <= 100:
            return _error(400, "Bad Request: message identifiers are not specified")
        present = [i for i in ids if i in self.messages and not self.messages[i].deleted]
        for message_id in present:  # missing ones are skipped, as documented
            refused = self._deletable(message_id)
            if refused:
                return refused
        for message_id in present:
            self.messages[message_id].deleted = True
        return _ok(True)

    # reading

    def _bot_json(self) -> dict[str, Any]:
        return {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "Städtedreieck",
            "username": self.bot_username,
        }

    def _get_me(self, params: dict[str, Any], files: dict[str, FormPart]) -> FakeResponse:
        return _ok(
            {
                **self._bot_json(),
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            }
        )

    def _get_chat(self, params: dict[str, Any], files: dict[str, FormPart]) -> FakeResponse:
        if not self._is_our_chat(params["chat_id"]):
            return _error(400, "Bad Request: chat not found")
        gifts = {
            "unlimited_gifts": False,
            "limited_gifts": False,
            "unique_gifts": False,
            "premium_subscription": False,
            "gifts_from_channels": False,
        }
        return _ok(
            {
                **self._chat_json(),
                "accent_color_id": 0,
                "max_reaction_count": 11,
                "accepted_gift_types": gifts,
            }
        )

    def _get_chat_member(self, params: dict[str, Any], files: dict[str, FormPart]) -> FakeResponse:
        if not self._is_our_chat(params["chat_id"]):
            return _error(400, "Bad Request: chat not found")
        if int(params["user_id"]) != BOT_ID:
            return _error(400, "Bad Request: user not found")
        user = self._bot_json()
        if self.bot_status != "administrator":
            return _ok({"status": self.bot_status, "user": user} | _member_extra(self.bot_status))
        rights = dict.fromkeys(_ADMIN_RIGHTS, False)
        rights |= {"can_manage_chat": True, "can_delete_messages": True}
        return _ok(
            {
                "status": "administrator",
                "user": user,
                **rights,
                "can_post_messages": self.can_post,
                "can_edit_messages": False,
            }
        )

    def _get_chat_member_count(
        self, params: dict[str, Any], files: dict[str, FormPart]
    ) -> FakeResponse:
        if not self._is_our_chat(params["chat_id"]):
            return _error(400, "Bad Request: chat not found")
        return _ok(self.members)


_ADMIN_RIGHTS = (
    "can_be_edited",
    "is_anonymous",
    "can_manage_chat",
    "can_delete_messages",
    "can_manage_video_chats",
    "can_restrict_members",
    "can_promote_members",
    "can_change_info",
    "can_invite_users",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
)


def _member_extra(status: str) -> dict[str, Any]:
    return {"until_date": 0} if status == "kicked" else {}


def _url_entity(text: str, start: int, end: int) -> dict[str, Any]:
    offset = len(text[:start].encode("utf-16-le")) // 2
    length = len(text[start:end].encode("utf-16-le")) // 2
    return {"type": "url", "offset": offset, "length": length}


def _ok(result: Any) -> FakeResponse:
    return json_response({"ok": True, "result": result})


def _error(code: int, description: str) -> FakeResponse:
    return json_response({"ok": False, "error_code": code, "description": description}, code)


def _parameters(
    request: FakeRequest,
) -> tuple[dict[str, Any], dict[str, FormPart], set[str]]:
    """A call's parameters as the Bot API reads them: query string and body.

    Returns the values, the multipart file parts, and the names whose values came as
    text (query string or form), which stand for their type.
    """
    params: dict[str, Any] = {name: values[-1] for name, values in request.query.items()}
    form = set(params)
    files: dict[str, FormPart] = {}
    kind = request.content_type.split(";")[0].strip().lower()
    if not request.body:
        return params, files, form
    if kind == "application/json":
        body = request.json()
        if not isinstance(body, dict):
            raise ValueError("a JSON body must be an object")
        params.update(body)
        form -= body.keys()
    elif kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
        for name, part in request.form().items():
            if part.filename is not None:
                files[name] = part
            else:
                params[name] = part.text
                form.add(name)
    else:
        raise ValueError(f"the Bot API does not read {kind or 'untyped'} bodies")
    return params, files, form


# --- the contract suite's harness --------------------------------------------------------------


class TelegramHarness(ServedAccount):
    platform = "telegram"
    create_route = "POST /bot{token}/sendMessage"
    token_env = "CROSSPOST_TEST_TELEGRAM_TOKEN"
    supports_images = True
    recovers_unknown = False  # no idempotency, no channel history: unknown stays unknown
    supports_delete = True

    def __init__(self) -> None:
        skip_without_spec(SPEC_NAME)
        self.server = TelegramFake()
        self.fake = self.server
        self.token = self.server.token

    def account_keys(self) -> dict[str, Any]:
        return {"chat": f"@{self.fake.username}"}

    def posts(self) -> list[OnPlatform]:
        albums: dict[str, list[FakeMessage]] = {}
        single: list[list[FakeMessage]] = []
        for message in self.fake.posts:
            if message.media_group_id is None:
                single.append([message])
            else:
                albums.setdefault(message.media_group_id, []).append(message)
        return [
            OnPlatform(
                remote_id=f"{self.fake.chat_id}/{','.join(str(m.message_id) for m in group)}",
                text=group[0].content,
            )
            for group in [*single, *albums.values()]
        ]

    def revoke(self) -> None:
        self.fake.token = "7000000001:revoked"


register_server("telegram", TelegramHarness)


# --- running it alone -------------------------------------------------------------------------


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="the one valid bot token")
    parser.add_argument("--username", default="staedtedreieck", help="the channel's @name")


def _build(args: argparse.Namespace) -> TelegramFake:
    if spec_path(SPEC_NAME) is None:
        raise SystemExit(f"tests.fakes.telegram: {SPEC_NAME} not found; set CROSSPOST_TEST_SPECS")
    return TelegramFake(
        host=args.host,
        port=args.port,
        latency=args.latency,
        verbose=args.verbose,
        token=args.token,
        username=args.username,
    )


def _describe_fake(fake: FakeServer) -> dict[str, Any]:
    assert isinstance(fake, TelegramFake)
    return {"platform": "telegram", "token": fake.token, "chat": f"@{fake.username}"}


if __name__ == "__main__":
    raise SystemExit(main(_build, _add_arguments, describe=_describe_fake))
