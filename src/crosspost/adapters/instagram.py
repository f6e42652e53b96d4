"""Instagram (professional account, Facebook Login): image posts through containers, never twice.

Instagram publishes no text-only posts and takes no upload: ``POST
/{ig-user-id}/media`` with ``image_url`` (the image's public URL on the website,
``PublishRequest.media_urls``), ``caption`` (the text, link included; links in
captions are not clickable) and ``alt_text`` creates a container, ``POST
/{ig-user-id}/media_publish?creation_id=…`` publishes it. Several images become a
carousel: one item container per image (``is_carousel_item``, each with its alt
text), then a ``CAROUSEL`` container with ``children``.

The container id is checkpointed before publishing; the flow that never posts twice
(status ``PUBLISHED`` / ``FINISHED`` / ``IN_PROGRESS`` / ``ERROR`` / ``EXPIRED``) is
:class:`~crosspost.adapters._meta.ContainerAdapter`'s. Captions hold 2 200 characters
and 30 hashtags (:func:`crosspost.media.check_instagram_caption`); an account may
publish 50 posts in a moving 24 hours (error 9/2207042 becomes RateLimited).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from crosspost.adapters._meta import ContainerAdapter, dig, insight_values, node
from crosspost.config import InstagramAccount
from crosspost.exceptions import Rejected, Transient
from crosspost.i18n import _
from crosspost.media import check_instagram_caption
from crosspost.models import AccountInfo, PostMetrics, PublishRequest

if TYPE_CHECKING:
    from crosspost.inbox import Fetched, PostRef, ReplyTarget
    from crosspost.models import PublishResult

#: views, likes, comments and shares of one post (media insights)
METRICS = "views,likes,comments,shares"


class InstagramAdapter(ContainerAdapter):
    platform = "instagram"
    status_field = "status_code"
    text_field = "caption"
    media_edge = "media"
    publish_edge = "media_publish"
    max_images = 10

    config: InstagramAccount

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.config, InstagramAccount):
            raise TypeError("InstagramAdapter needs an InstagramAccount")

    @property
    def user_id(self) -> str:
        return self.config.ig_user_id

    def _status_fields(self) -> str:
        return "status_code,status"  # "status" holds the error subcode when it failed

    def check(self, request: PublishRequest) -> None:
        if not request.media:
            raise Rejected(
                _("Instagram publishes no text-only posts; add an image with alt text"),
                sent=False,
            )
        problem = check_instagram_caption(request.text)
        if problem is not None:
            raise Rejected(problem, sent=False)

    def container_fields(self, request: PublishRequest, urls: Sequence[str]) -> dict[str, str]:
        if len(urls) == 1:
            return {"image_url": urls[0], "caption": request.text, "alt_text": request.media[0].alt}
        return {"media_type": "CAROUSEL", "caption": request.text}

    async def metrics(self, remote_id: str) -> PostMetrics | None:
        try:
            data = await self.graph.get(f"/{node(remote_id)}/insights", metric=METRICS)
        except Rejected:
            return None  # no insights for this post (too new, or not a business account)
        values = insight_values(data)
        return PostMetrics(
            likes=values.get("likes"),
            reposts=values.get("shares"),
            replies=values.get("comments"),
            views=values.get("views"),
        )

    async def followers(self) -> int | None:
        data = await self.graph.get(f"/{node(self.user_id)}", fields="followers_count")
        count = dig(data, "followers_count")
        return count if isinstance(count, int) else None

    # -- the inbox (issue 9) -----------------------------------------------------------------

    async def comments(self, post: PostRef, after: datetime) -> list[Fetched]:
        """Comments on the account's recent media (``GET /{ig-media-id}/comments``)."""
        from crosspost.adapters._comments import graph_comments, username_comment
        from crosspost.inbox import InteractionKind

        def parse(raw: Any) -> Fetched | None:
            # comments have no address of their own: the post's
            return username_comment(post, raw, kind=InteractionKind.COMMENT, url=None)

        return await graph_comments(
            self.graph,
            f"/{node(post.remote_id)}/comments",
            {"fields": "id,text,username,timestamp"},
            parse,
            after,
        )

    async def reply(self, target: ReplyTarget, text: str, *, key: str) -> PublishResult:
        """A reply to the comment (``POST /{ig-comment-id}/replies``)."""
        return await self.comment(
            f"/{node(target.remote_id)}/replies",
            text,
            no_id=_("POST /replies: the answer names no comment"),
        )

    async def verify(self) -> AccountInfo:
        data = await self.graph.get(
            f"/{node(self.user_id)}", fields="id,username,name,followers_count"
        )
        username = dig(data, "username")
        if not isinstance(username, str) or not username:
            raise Transient(_("the Instagram account's name is not readable"))
        name = dig(data, "name")
        followers = dig(data, "followers_count")
        return AccountInfo(
            name=f"@{username}",
            url=f"https://www.instagram.com/{username}/",
            detail=name if isinstance(name, str) and name else None,
            followers=followers if isinstance(followers, int) else None,
        )


ADAPTER = InstagramAdapter
