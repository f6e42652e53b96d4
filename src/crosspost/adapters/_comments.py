"""Comments listed per published post (Facebook, Instagram, Threads, LinkedIn).

These platforms have no "notifications" of a Page or organisation an app may
read; the inbox asks each recent post for its comments instead. The cursor is
one JSON object ``{post remote id: newest comment time seen (ISO 8601)}``, and a
page is yielded (and stored with its cursor) after every post, so a fetch that
a rate limit interrupts resumes with the posts it had not reached.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from crosspost.adapters._http import dig
from crosspost.adapters._timestamps import parse_time
from crosspost.inbox import Fetched, InteractionKind, InteractionPage, PostRef

#: the comments of one post newer than ``after`` (None: since the inbox's ``since``)
CommentLister = Callable[[PostRef, datetime], Awaitable[list[Fetched]]]


def read_cursor(cursor: str | None) -> dict[str, str]:
    if not cursor:
        return {}
    try:
        data = json.loads(cursor)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): str(v) for k, v in data.items() if isinstance(v, str)}


async def comments_per_post(
    posts: Sequence[PostRef],
    cursor: str | None,
    since: datetime,
    list_comments: CommentLister,
) -> AsyncIterator[InteractionPage]:
    """One page per post: its comments since the cursor's time for it.

    A comment in the same second as the newest one seen is listed again (Graph
    times have whole seconds); the store keeps each interaction once.
    """
    seen = read_cursor(cursor)
    watched = {p.remote_id for p in posts}
    # posts that left the watch window drop out of the cursor (it stays small)
    seen = {k: v for k, v in seen.items() if k in watched}
    for post in posts:
        after = parse_time(seen.get(post.remote_id)) or since
        found = [c for c in await list_comments(post, after) if c.created_at >= after]
        newest = max((c.created_at for c in found), default=after)
        seen[post.remote_id] = newest.astimezone(UTC).isoformat()
        yield InteractionPage(found, json.dumps(seen, sort_keys=True))


def graph_comment(
    post: PostRef,
    remote_id: Any,
    created: datetime | None,
    *,
    kind: InteractionKind,
    handle: str,
    text: Any,
    url: Any,
) -> Fetched | None:
    """A Graph comment on ``post`` as fetched, or None where its id or time is unreadable.

    ``url``: the comment's own address, else (not a string) the post's.
    """
    if not isinstance(remote_id, str) or created is None:
        return None
    return Fetched(
        remote_id=remote_id,
        kind=kind,
        handle=handle,
        text=str(text or ""),
        url=url if isinstance(url, str) else post.remote_url,
        created_at=created,
        parent_remote_id=post.remote_id,
    )


def username_comment(post: PostRef, raw: Any, *, kind: InteractionKind, url: Any) -> Fetched | None:
    """An Instagram or Threads comment (``id``, ``text``, ``username``, ``timestamp``),
    by ``@username``; ``url`` as for :func:`graph_comment`."""
    username = dig(raw, "username")
    return graph_comment(
        post,
        dig(raw, "id"),
        parse_time(dig(raw, "timestamp")),
        kind=kind,
        handle=f"@{username}" if isinstance(username, str) else "",
        text=dig(raw, "text"),
        url=url,
    )


#: pages of comments read per post and fetch at most (100 each)
MAX_PAGES = 10


async def graph_comments(
    graph: Any,
    path: str,
    params: dict[str, Any],
    parse: Callable[[Any], Fetched | None],
    after: datetime,
    *,
    newest_first: bool = False,
) -> list[Fetched]:
    """A Graph edge's comments, page by page (``paging.cursors.after``).

    ``newest_first``: the edge lists the newest first, so reading stops at the
    first comment older than ``after``.
    """
    found: list[Fetched] = []
    query = {**params, "limit": 100}
    for _page in range(MAX_PAGES):
        data = await graph.get(path, **query)
        items = data.get("data") if isinstance(data, dict) else None
        older = False
        for raw in items if isinstance(items, list) else []:
            item = parse(raw)
            if item is None:
                continue
            if item.created_at < after:
                older = True
                continue
            found.append(item)
        paging = data.get("paging") if isinstance(data, dict) else None
        token = paging.get("cursors", {}).get("after") if isinstance(paging, dict) else None
        if (older and newest_first) or not isinstance(paging, dict) or not paging.get("next"):
            break
        if not isinstance(token, str) or not token:
            break
        query["after"] = token
    return found
