"""A year of known history for the evaluation tests: posts, deliveries, failures,
metric samples and follower counts written straight into the tables, plus the
figures the report must show for them (computed here from the seed itself).
"""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import insert

from crosspost.store.schema import account_metrics, attempts, deliveries, post_metrics, posts
from crosspost.store.sql import SqlStore

ZONE = ZoneInfo("Europe/Berlin")
YEAR = 2026
SITE = "https://www.zv-staedtedreieck.de"
CATEGORIES = ("veranstaltung", "nachrichten", "stellenangebot")
#: account → platform of the seeded year
ACCOUNTS = {"mastodon": "mastodon", "bluesky": "bluesky", "website": "feed", "telegram": "telegram"}


@dataclass
class Expected:
    posts_per_month: Counter[str] = field(default_factory=Counter)
    deliveries_per_month: Counter[str] = field(default_factory=Counter)
    posts_by_category: Counter[str] = field(default_factory=Counter)
    published_by_account: Counter[str] = field(default_factory=Counter)
    on_time: int = 0
    published: int = 0
    images: int = 0
    images_with_alt: int = 0
    failed_tries: Counter[str] = field(default_factory=Counter)
    failed_deliveries: Counter[str] = field(default_factory=Counter)
    likes_by_account: Counter[str] = field(default_factory=Counter)
    measured_by_account: Counter[str] = field(default_factory=Counter)
    followers: dict[str, tuple[int, int]] = field(default_factory=dict)
    top_post_title: str = ""
    top_post_link: str = ""
    top_post_interactions: int = 0
    post_links: set[str] = field(default_factory=set)
    remote_urls: set[str] = field(default_factory=set)


def local(year: int, month: int, day: int, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ZONE).astimezone(UTC)


def seed_year(store: SqlStore) -> Expected:
    """Write the seeded year into ``store``; the figures it must give."""
    expected = Expected()
    post_number = 0
    best = (-1, "", "")
    with store.engine.begin() as conn:

        def add_post(
            when: datetime, category: str, *, alts: tuple[str, ...], counted: bool
        ) -> tuple[int, str, str]:
            nonlocal post_number
            post_number += 1
            title = f"Beitrag {post_number}"
            link = f"{SITE}/aktuelles/beitrag-{post_number}"
            post_id = conn.execute(
                insert(posts)
                .values(
                    title=title,
                    body=f"Text {post_number}",
                    link=link,
                    category=category,
                    publish_at=when,
                    ambiguous_time=False,
                    created_at=when - timedelta(days=1),
                    created_by="redaktion",
                    source=None,
                    media=[{"path": f"bild{i}.jpg", "alt": a} for i, a in enumerate(alts)],
                    variants={},
                )
                .returning(posts.c.id)
            ).scalar_one()
            if counted:
                expected.post_links.add(link)
            return post_id, title, link

        def add_delivery(
            post_id: int,
            account: str,
            text: str,
            *,
            state: str,
            due: datetime,
            published: datetime | None,
        ) -> int:
            remote = f"{account}-{post_id}" if published else None
            url = f"https://{account}.example/@zv/{post_id}" if published else None
            return int(
                conn.execute(
                    insert(deliveries)
                    .values(
                        post_id=post_id,
                        account=account,
                        platform=ACCOUNTS[account],
                        state=state,
                        due_at=due,
                        text=text,
                        idempotency_key=secrets.token_hex(16),
                        attempts=1,
                        remote_id=remote,
                        remote_url=url,
                        updated_at=published or due,
                        published_at=published,
                    )
                    .returning(deliveries.c.id)
                ).scalar_one()
            )

        def add_attempt(
            delivery_id: int,
            post_id: int,
            account: str,
            outcome: str,
            status: int | None,
            at: datetime,
        ) -> None:
            conn.execute(
                insert(attempts).values(
                    delivery_id=delivery_id,
                    post_id=post_id,
                    account=account,
                    number=1,
                    started_at=at,
                    finished_at=at,
                    outcome=outcome,
                    http_status=status,
                    message="seeded",
                    idempotency_key="k",
                    worker="seed",
                )
            )

        for month in range(1, 13):
            for n in range(month % 3 + 1):
                when = local(YEAR, month, 10 + n)
                category = CATEGORIES[(month + n) % len(CATEGORIES)]
                alts: tuple[str, ...] = ("Ein Bild",) if n == 0 else ()
                if month == 5 and n == 1:
                    alts = ("Bühne", "")  # one image without alt text
                post_id, title, link = add_post(when, category, alts=alts, counted=True)
                key = f"{YEAR}-{month:02d}"
                expected.posts_per_month[key] += 1
                expected.posts_by_category[category] += 1
                expected.images += len(alts)
                expected.images_with_alt += sum(1 for a in alts if a)
                text = f"Text {post_id}\n\n{link}"
                interactions_of_post = 0
                for account in ("mastodon", "bluesky", "website"):
                    late = account == "mastodon" and month == 3
                    published = when + (timedelta(minutes=20) if late else timedelta(seconds=30))
                    delivery_id = add_delivery(
                        post_id, account, text, state="published", due=when, published=published
                    )
                    expected.deliveries_per_month[key] += 1
                    expected.published_by_account[account] += 1
                    expected.published += 1
                    expected.on_time += 0 if late else 1
                    expected.remote_urls.add(f"https://{account}.example/@zv/{post_id}")
                    if account == "bluesky" and month == 7:
                        # published after a rate limit
                        add_attempt(delivery_id, post_id, account, "rate_limited", 429, when)
                        expected.failed_tries["rate_limit"] += 1
                    if account == "mastodon":
                        likes_1, likes_7 = post_id, post_id * 2
                        for age, likes in ((1, likes_1), (7, likes_7)):
                            conn.execute(
                                insert(post_metrics).values(
                                    delivery_id=delivery_id,
                                    account=account,
                                    collected_at=published + timedelta(days=age, hours=1),
                                    age_days=age,
                                    likes=likes,
                                    reposts=1,
                                    replies=0,
                                    views=None,
                                )
                            )
                        expected.likes_by_account[account] += likes_7
                        expected.measured_by_account[account] += 1
                        interactions_of_post += likes_7 + 1
                    if account == "bluesky":
                        conn.execute(
                            insert(post_metrics).values(
                                delivery_id=delivery_id,
                                account=account,
                                collected_at=published + timedelta(days=1, hours=1),
                                age_days=1,
                                likes=3,
                                reposts=0,
                                replies=1,
                                views=None,
                            )
                        )
                        expected.likes_by_account[account] += 3
                        expected.measured_by_account[account] += 1
                        interactions_of_post += 4
                if interactions_of_post > best[0]:
                    best = (interactions_of_post, title, link)
                if n == 0:
                    # Telegram fails the first post of every month: two 503s, then a refusal
                    delivery_id = add_delivery(
                        post_id, "telegram", text, state="failed", due=when, published=None
                    )
                    add_attempt(delivery_id, post_id, "telegram", "transient", 503, when)
                    add_attempt(delivery_id, post_id, "telegram", "transient", 503, when)
                    add_attempt(delivery_id, post_id, "telegram", "rejected", 400, when)
                    expected.failed_tries["platform_error"] += 2
                    expected.failed_tries["refused"] += 1
                    expected.failed_deliveries["telegram"] += 1

        # outside the year (by the site's time zone): must not count
        for when in (local(YEAR - 1, 12, 31, 23, 30), local(YEAR + 1, 1, 1, 0, 30)):
            post_id, _title, link = add_post(when, "nachrichten", alts=(), counted=False)
            add_delivery(
                post_id,
                "mastodon",
                f"x\n\n{link}",
                state="published",
                due=when,
                published=when,
            )

        for account, counts in (
            ("mastodon", ((1, 15, 100), (6, 15, 150), (12, 15, 220))),
            ("bluesky", ((2, 1, 10), (11, 30, 40))),
        ):
            for month, day, followers in counts:
                at = local(YEAR, month, day, 6)
                conn.execute(
                    insert(account_metrics).values(
                        account=account,
                        collected_at=at,
                        followers=followers,
                        day=at.astimezone(ZONE).date().isoformat(),
                    )
                )
            expected.followers[account] = (counts[0][2], counts[-1][2])
        # the year before: not part of the growth
        conn.execute(
            insert(account_metrics).values(
                account="mastodon",
                collected_at=local(YEAR - 1, 12, 30),
                followers=90,
                day=f"{YEAR - 1}-12-30",
            )
        )
    expected.top_post_interactions, expected.top_post_title, expected.top_post_link = best
    return expected
