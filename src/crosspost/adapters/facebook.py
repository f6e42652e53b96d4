"""Facebook Page: one feed post per delivery, images with alt text, never twice.

The Page access token (``pages_manage_posts``, ``pages_read_engagement``) posts as
the Page. A text post is ``POST /{page-id}/feed`` with ``message`` (the text, link
included) and ``link`` (the canonical link, which Facebook turns into a preview
card). A post with images first uploads each one unpublished (``POST
/{page-id}/photos`` with ``source``, ``published=false`` and the alt text as
``alt_text_custom``), then attaches them with ``attached_media[n]={"media_fbid": id}``;
such a post carries no ``link`` (a Page post is either a link share or a photo post)
and the link stays clickable in the message.

Facebook has no idempotency key. After an answer was lost,
:meth:`FacebookAdapter.find_existing` looks for the post among the Page's recent
ones (``GET /{page-id}/published_posts``) by its message, which holds the link.
Facebook's own duplicate guard (error 506, "Duplicate status message") is read the
same way: if the earlier copy is this delivery's, it is the result; otherwise the post
is refused. Errors and throttling are mapped in :mod:`crosspost.adapters._meta`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from crosspost.adapters._files import read_image
from crosspost.adapters._meta import (
    DUPLICATE_POST,
    GraphAdapter,
    GraphRejected,
    dig,
    node,
    parse_time,
)
from crosspost.config import FacebookAccount
from crosspost.exceptions import Rejected, Transient, UnknownOutcome
from crosspost.i18n import _
from crosspost.models import AccountInfo, Media, PostMetrics, PublishRequest, PublishResult

if TYPE_CHECKING:
    from crosspost.inbox import Fetched, PostRef, ReplyTarget

METRIC_FIELDS = "shares,reactions.summary(total_count),comments.summary(total_count)"
#: Facebook refuses more than this many images in one post
MAX_IMAGES = 10


class FacebookAdapter(GraphAdapter):
    platform = "facebook"
    idempotent_resend = False
    can_reconcile = True

    config: FacebookAccount

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.config, FacebookAccount):
            raise TypeError("FacebookAdapter needs a FacebookAccount")

    def no_token(self) -> str:
        return _("accounts.{account}: no Page access token").format(account=self.name)

    @property
    def page(self) -> str:
        return node(self.config.page_id)

    async def publish(self, request: PublishRequest) -> PublishResult:
        if len(request.media) > MAX_IMAGES:
            raise Rejected(
                _("Facebook takes at most {limit} images in a post; this one has {count}").format(
                    limit=MAX_IMAGES, count=len(request.media)
                ),
                sent=False,
            )
        photos = [await self._upload(media) for media in request.media]
        fields: dict[str, str] = {"message": request.text}
        if photos:
            for n, photo in enumerate(photos):
                fields[f"attached_media[{n}]"] = json.dumps({"media_fbid": photo})
        elif request.link:
            fields["link"] = request.link
        try:
            data = await self.graph.post(f"/{self.page}/feed", fields)
        except GraphRejected as exc:
            if exc.code != DUPLICATE_POST:
                raise
            # Facebook keeps the first copy: if it is this delivery's, that is the result.
            found = await self.find_existing(request)
            if found is not None:
                return found
            raise Rejected(
                _(
                    "Facebook refuses the post as a duplicate of an earlier one on the Page "
                    "({reason}); change the text or delete the earlier post"
                ).format(reason=exc.message),
                http_status=exc.http_status,
            ) from exc
        post_id = dig(data, "id")
        if not isinstance(post_id, str) or not post_id:
            raise UnknownOutcome(_("POST feed: the answer names no post"))
        return PublishResult(remote_id=post_id, remote_url=self.post_url(post_id))

    async def _upload(self, media: Media) -> str:
        data = await read_image(media)
        try:
            answer = await self.graph.post(
                f"/{self.page}/photos",
                {"published": "false", "alt_text_custom": media.alt},
                files={"source": (media.path.name, data, media.mime)},
            )
        except UnknownOutcome as exc:
            # An unpublished photo no post uses is invisible: uploading it again is safe.
            raise Transient(exc.message) from exc
        photo = dig(answer, "id")
        if not isinstance(photo, (str, int)) or photo == "":
            raise Transient(_("POST photos: the answer names no photo"))
        return str(photo)

    def post_url(self, post_id: str) -> str:
        page, _sep, post = post_id.partition("_")
        if post:
            return f"https://www.facebook.com/{page}/posts/{post}"
        return f"https://www.facebook.com/{post_id}"

    async def find_existing(self, request: PublishRequest) -> PublishResult | None:
        """The Page's recent post with exactly this message (and so the link), if any."""
        found = await self.recent_post(
            f"/{self.page}/published_posts",
            request,
            fields=("message", "created_time", "permalink_url"),
            unreadable=_("the list of the Page's recent posts is not readable"),
            link_in_text=True,
        )
        if found is None:
            return None
        post_id, url = found
        return PublishResult(post_id, url if isinstance(url, str) else self.post_url(post_id))

    async def metrics(self, remote_id: str) -> PostMetrics | None:
        data = await self.graph.get(f"/{node(remote_id)}", fields=METRIC_FIELDS)
        shares = dig(data, "shares", "count")
        reactions = dig(data, "reactions", "summary", "total_count")
        comments = dig(data, "comments", "summary", "total_count")
        return PostMetrics(
            likes=reactions if isinstance(reactions, int) else None,
            # Facebook leaves "shares" out of a post nobody shared.
            reposts=shares if isinstance(shares, int) else 0,
            replies=comments if isinstance(comments, int) else None,
            views=None,  # impressions need read_insights and count differently
        )

    async def followers(self) -> int | None:
        data = await self.graph.get(f"/{self.page}", fields="followers_count")
        count = dig(data, "followers_count")
        return count if isinstance(count, int) else None

    # -- the inbox (issue 9) -----------------------------------------------------------------

    async def comments(self, post: PostRef, after: datetime) -> list[Fetched]:
        """Comments on the Page's recent posts (``GET /{post-id}/comments``, newest first)."""
        from crosspost.adapters._comments import graph_comment, graph_comments
        from crosspost.inbox import InteractionKind

        def parse(raw: Any) -> Fetched | None:
            if str(dig(raw, "from", "id")) == self.config.page_id:
                return None  # the Page's own answers
            name = dig(raw, "from", "name")
            return graph_comment(
                post,
                dig(raw, "id"),
                parse_time(dig(raw, "created_time")),
                kind=InteractionKind.COMMENT,
                handle=name if isinstance(name, str) else "",
                text=dig(raw, "message"),
                url=dig(raw, "permalink_url"),
            )

        return await graph_comments(
            self.graph,
            f"/{node(post.remote_id)}/comments",
            {
                "fields": "id,message,from,created_time,permalink_url",
                "filter": "stream",
                "order": "reverse_chronological",
            },
            parse,
            after,
            newest_first=True,
        )

    async def reply(self, target: ReplyTarget, text: str, *, key: str) -> PublishResult:
        """A comment reply as the Page (``POST /{comment-id}/comments``)."""
        return await self.comment(
            f"/{node(target.remote_id)}/comments",
            text,
            no_id=_("POST /comments: the answer names no comment"),
        )

    async def verify(self) -> AccountInfo:
        data = await self.graph.get(f"/{self.page}", fields="id,name,link,followers_count")
        name = dig(data, "name")
        if not isinstance(name, str):
            raise Transient(_("the Page's name is not readable"))
        link = dig(data, "link")
        followers = dig(data, "followers_count")
        return AccountInfo(
            name=name,
            url=link
            if isinstance(link, str)
            else f"https://www.facebook.com/{self.config.page_id}",
            detail=_("Facebook Page {id}").format(id=self.config.page_id),
            followers=followers if isinstance(followers, int) else None,
        )


ADAPTER = FacebookAdapter
