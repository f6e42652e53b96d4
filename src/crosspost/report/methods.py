"""What each platform counts for the report, and what it cannot tell.

The texts are English message ids marked with :func:`~crosspost.i18n.N_`; the
report translates them into its own language when it renders them.
"""

from __future__ import annotations

from crosspost.i18n import N_

#: platform → (what its figures are, what it cannot tell)
PLATFORM_NOTES: dict[str, tuple[str, str]] = {
    "mastodon": (
        N_(
            "Favourites as likes, boosts as reposts, replies; the follower count of the "
            "account. Figures as the account's own instance sees them."
        ),
        N_(
            "No views: Mastodon counts none. Favourites and boosts on other servers reach "
            "the own instance late or not at all, so the figures are lower bounds."
        ),
    ),
    "bluesky": (
        N_("Likes, reposts (quotes not included), replies; the follower count of the profile."),
        N_("No views: Bluesky counts none."),
    ),
    "telegram": (
        N_("The channel's member count as followers."),
        N_(
            "No figures per post: the Bot API gives bots no view counts, reactions or "
            "forwards of channel posts."
        ),
    ),
    "facebook": (
        N_("Reactions of every kind as likes, shares, comments; the Page's follower count."),
        N_(
            "No views: impressions need the read_insights permission and are counted "
            "differently; comments hidden by moderation are not counted."
        ),
    ),
    "instagram": (
        N_("Likes, shares, comments and views from the media insights; the follower count."),
        N_(
            "Insights exist only for business or creator accounts and only some time after "
            "publication; without them a post has no figures."
        ),
    ),
    "threads": (
        N_("Likes, reposts and quotes (together as reposts), replies, views; the followers."),
        N_("Figures need the threads_manage_insights permission; without it there are none."),
    ),
    "linkedin": (
        N_(
            "Likes, comments; impressions as views and reshares as reposts, and the Page's "
            "followers, where the token has the organisation admin permission."
        ),
        N_(
            "Without rw_organization_admin: no views, reposts or followers. LinkedIn gives "
            "share statistics only for the last 12 months."
        ),
    ),
    "x": (
        N_("Likes, reposts, replies and impressions (views) of the public metrics; followers."),
        N_("Figures depend on the API access level; a deleted post has none."),
    ),
    "webhook": (
        N_("Nothing: the receiving system (e.g. the website's CMS) keeps its own statistics."),
        N_("Reach and engagement of the website are not measured by crosspost."),
    ),
    "feed": (
        N_("Nothing: the Atom feed and the HTML archive are files on the own website."),
        N_("Visits to the website are not measured by crosspost (use the website's statistics)."),
    ),
    "console": (
        N_("Nothing: the console account only prints (tests and demonstrations)."),
        N_("No reach at all."),
    ),
}
