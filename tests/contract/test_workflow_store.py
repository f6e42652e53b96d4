"""The editorial workflow on SQLite and PostgreSQL: four eyes, expiry, duplicates,
series (idempotent across daemons, spread, cancel), quiet hours, edit, audit.

Driven through :class:`crosspost.workflow.Workflow` with a frozen clock; the
store compares with that clock (``db_clock=False``), as in the Store contract.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.contract.conftest import BACKENDS

from crosspost.clock import FrozenClock
from crosspost.config import Settings
from crosspost.exceptions import PostRejected, Refused
from crosspost.models import DeliveryState
from crosspost.service import Crosspost, Planned
from crosspost.store.sql import SqlStore
from crosspost.workflow import Workflow

SITE = "https://www.zv-staedtedreieck.de"
NOW = datetime(2026, 3, 20, 10, 0, tzinfo=UTC)  # a Friday, 11:00 in Berlin
LEASE = timedelta(seconds=60)


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_store(request: pytest.FixtureRequest) -> Iterator[SqlStore]:
    with BACKENDS[request.param](request) as store:
        assert isinstance(store, SqlStore)
        yield store


def make_settings(**extra: Any) -> Settings:
    values: dict[str, Any] = {
        "site": {"url": SITE, "timezone": "Europe/Berlin"},
        "accounts": {
            "mastodon": {
                "platform": "mastodon",
                "base_url": "https://social.example",
                "max_characters": 200,
                "token_env": "UNUSED",
            },
            "website": {"platform": "feed", "path": "/nonexistent/site"},
        },
        "approval": {"categories": ["stellenangebot"]},
    }
    values.update(extra)
    return Settings(**values)


class Desk:
    """The editors' desk: one store, one clock, a workflow per person."""

    def __init__(self, store: SqlStore, settings: Settings | None = None) -> None:
        self.store = store
        self.settings = settings or make_settings()
        self.clock = FrozenClock(NOW)
        self.service = Crosspost(self.settings, store, clock=self.clock)

    def as_(self, actor: str) -> Workflow:
        return Workflow(self.service, actor=actor)

    def plan(self, text: str, *, link: str | None = None, category: str | None = None,
             at: str | None = None) -> Planned:  # fmt: skip
        post = self.service.post_from_text(
            text, link=link, category=category, accounts=[], title=None
        )
        return self.service.plan(post, at=at)

    def plan_file(self, path: Path) -> Planned:
        return self.service.plan(self.service.read_files([path])[0])

    def states(self, post_id: int) -> list[DeliveryState]:
        return [d.state for d in self.store.deliveries_of(post_id)]

    def claim(self) -> list[Any]:
        return self.store.claim_due(
            "w1",
            now=self.clock.now(),
            lease=LEASE,
            capacity={"mastodon": 10, "website": 10},
            reconcilable=[],
        )

    def actions(self, post_id: int | None = None) -> list[tuple[str, str, int | None]]:
        return [(e.action, e.actor, e.post_id) for e in self.as_("x").audit(post_id)]


def job_advert(desk: Desk, at: str = "2026-03-21 09:00") -> Planned:
    return desk.plan(
        "Wir suchen eine Fachkraft für den Wertstoffhof.",
        link=f"{SITE}/stellen/wertstoffhof",
        category="stellenangebot",
        at=at,
    )


def series_file(tmp_path: Path, name: str = "wertstoffhof", title: str = "Öffnungszeiten") -> Path:
    path = tmp_path / f"{name}.md"
    path.write_text(
        f'+++\ntitle = "{title}"\nlink = "{SITE}/{name}"\n'
        'repeat = "FREQ=WEEKLY;BYDAY=SU;BYHOUR=8;BYMINUTE=0"\n+++\n'
        f"{title}: Samstag 9 bis 13 Uhr ({name}).\n",
        encoding="utf-8",
    )
    return path


# -- approval ---------------------------------------------------------------------------
def test_a_post_needing_approval_is_a_draft_the_daemon_never_claims(sql_store: SqlStore) -> None:
    desk = Desk(sql_store)
    [stored] = desk.as_("anna").enqueue([job_advert(desk)])
    assert stored.draft
    post_id = stored.post_ids[0]
    assert set(desk.states(post_id)) == {DeliveryState.DRAFT}
    desk.clock.advance(timedelta(days=2))  # long past its time
    assert desk.claim() == []


def test_four_eyes_the_author_cannot_approve_another_person_can(sql_store: SqlStore) -> None:
    desk = Desk(sql_store)
    post_id = desk.as_("anna").enqueue([job_advert(desk)])[0].post_ids[0]
    with pytest.raises(Refused, match="another person must approve"):
        desk.as_("anna").approve(post_id)
    assert set(desk.states(post_id)) == {DeliveryState.DRAFT}
    approval = desk.as_("bernd").approve(post_id)
    assert approval.post_ids == [post_id]
    assert set(desk.states(post_id)) == {DeliveryState.SCHEDULED}
    desk.clock.advance(timedelta(days=1))
    assert {d.post_id for d in desk.claim()} == {post_id}
    with pytest.raises(Refused, match="not awaiting approval"):
        desk.as_("carla").approve(post_id)


def test_whoever_edited_a_draft_cannot_approve_it(sql_store: SqlStore, tmp_path: Path) -> None:
    desk = Desk(sql_store)
    post_id = desk.as_("anna").enqueue([job_advert(desk)])[0].post_ids[0]
    form = desk.as_("bernd").edit_form(post_id).replace("Fachkraft", "Fachkraft (m/w/d)")
    edited = tmp_path / "edited.md"
    edited.write_text(form, encoding="utf-8")
    desk.as_("bernd").apply_edit(post_id, edited)
    with pytest.raises(Refused, match="four-eyes"):
        desk.as_("bernd").approve(post_id)
    desk.as_("carla").approve(post_id)


def test_an_unapproved_post_whose_time_passed_is_not_published(sql_store: SqlStore) -> None:
    desk = Desk(sql_store)
    post_id = desk.as_("anna").enqueue([job_advert(desk)])[0].post_ids[0]
    desk.clock.advance(timedelta(days=2))
    [(pid, _title, _due, expired)] = desk.as_("x").drafts()
    assert (pid, expired) == (post_id, True)
    with pytest.raises(Refused, match="passed before it was approved"):
        desk.as_("bernd").approve(post_id)
    assert desk.claim() == []
    # a new time, then approval: published after all
    desk.as_("anna").reschedule(post_id, desk.clock.now() + timedelta(hours=2))
    desk.as_("bernd").approve(post_id)
    desk.clock.advance(timedelta(hours=3))
    assert {d.post_id for d in desk.claim()} == {post_id}


def test_reject_is_final_and_records_the_reason(sql_store: SqlStore) -> None:
    desk = Desk(sql_store)
    post_id = desk.as_("anna").enqueue([job_advert(desk)])[0].post_ids[0]
    with pytest.raises(Refused, match="another person reviews it"):
        desk.as_("anna").reject(post_id, "selbst")
    assert desk.as_("bernd").reject(post_id, "Stelle ist schon besetzt") == [post_id]
    deliveries = sql_store.deliveries_of(post_id)
    assert {d.state for d in deliveries} == {DeliveryState.REJECTED}
    assert {d.error for d in deliveries} == {"Stelle ist schon besetzt"}
    with pytest.raises(Refused):
        desk.as_("carla").approve(post_id)


# -- duplicates ---------------------------------------------------------------------------
def test_duplicate_link_is_refused_naming_the_earlier_post(sql_store: SqlStore) -> None:
    desk = Desk(sql_store)
    first = desk.as_("anna").enqueue([desk.plan("Erster Text", link=f"{SITE}/a")])[0].post_ids[0]
    with pytest.raises(PostRejected, match=f"post {first} with the same link"):
        desk.as_("anna").enqueue([desk.plan("Anderer Text", link=f"{SITE}/a")])
    assert len(sql_store.list_posts()) == 1  # nothing written


def test_force_enqueues_a_duplicate_and_the_audit_says_so(sql_store: SqlStore) -> None:
    desk = Desk(sql_store)
    first = desk.as_("anna").enqueue([desk.plan("Erster Text", link=f"{SITE}/a")])[0].post_ids[0]
    [again] = desk.as_("anna").enqueue([desk.plan("Zweiter", link=f"{SITE}/a")], force=True)
    forced = [e for e in desk.as_("x").audit(again.post_ids[0]) if e.action == "enqueue_forced"]
    assert len(forced) == 1
    assert forced[0].detail["forced_duplicates"] == [first]


def test_identical_text_is_a_duplicate_even_with_the_default_link(sql_store: SqlStore) -> None:
    desk = Desk(sql_store)
    desk.as_("anna").enqueue([desk.plan("Heute geschlossen.")])
    with pytest.raises(PostRejected, match="the same text"):
        desk.as_("anna").enqueue([desk.plan("Heute geschlossen.")])
    # the site's own address is shared by many posts: another text with it is fine
    desk.as_("anna").enqueue([desk.plan("Morgen geschlossen.")])


def test_the_guard_looks_back_only_dedup_days(sql_store: SqlStore) -> None:
    desk = Desk(sql_store, make_settings(dedup={"days": 7}))
    desk.as_("anna").enqueue([desk.plan("Text", link=f"{SITE}/a")])
    desk.clock.advance(timedelta(days=8))
    desk.as_("anna").enqueue([desk.plan("Text", link=f"{SITE}/a")])
    assert len(sql_store.list_posts()) == 2


def test_a_batch_with_a_duplicate_stores_nothing(sql_store: SqlStore) -> None:
    desk = Desk(sql_store)
    batch = [desk.plan("Eins", link=f"{SITE}/x"), desk.plan("Zwei", link=f"{SITE}/x")]
    with pytest.raises(PostRejected):
        desk.as_("anna").enqueue(batch)
    assert sql_store.list_posts() == []
    assert desk.actions() == []


def test_two_enqueues_of_one_link_at_once_store_it_once_on_postgresql(
    request: pytest.FixtureRequest,
) -> None:
    """Read committed cannot see the other's uncommitted post: the guard's advisory
    lock per account makes the second enqueue wait for the first and then refuse."""
    with BACKENDS["postgresql"](request) as store:
        assert isinstance(store, SqlStore)
        second = SqlStore(store.url, db_clock=False)
        try:
            outcome = _enqueue_concurrently(Desk(store), second)
        finally:
            second.close()
        assert sorted(outcome) == ["refused", "stored"]
        assert len(store.list_posts()) == 1


def _enqueue_concurrently(desk: Desk, other: SqlStore) -> list[str]:
    """Two editors, each on own connections, enqueue the same link at the same moment.

    The first holds its transaction open, its post inserted but uncommitted, until
    the second has either finished its enqueue (no lock: it saw nothing and stored
    a duplicate) or waits for a lock; only then does the first commit.
    """
    from sqlalchemy import text

    from crosspost.store.workflow import SqlWorkflow

    flows = [desk.as_("anna"), Workflow(Crosspost(desk.settings, other, clock=desk.clock),
                                        actor="bernd")]  # fmt: skip
    planned = desk.plan("Die Stelle ist neu ausgeschrieben.", link=f"{SITE}/stellen/neu")
    barrier = threading.Barrier(2)
    second_done = threading.Event()
    outcome = ["", ""]

    def enqueue(n: int, conn: Any = None) -> None:
        flow = flows[n]
        db = flow.sql
        assert isinstance(db, SqlWorkflow)
        try:
            db.enqueue(planned.post, planned.rendered, dues=flow.dues(planned), draft=False,
                       actor=flow.actor, now=desk.clock.now(),
                       dedup=flow.dedup_query(planned.post), conn=conn)  # fmt: skip
            outcome[n] = "stored"
        except PostRejected:
            outcome[n] = "refused"

    def waiting_for_a_lock() -> bool:
        with desk.store.engine.connect() as conn:
            return bool(conn.execute(text(
                "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
                " WHERE l.locktype = 'advisory' AND NOT l.granted"
                " AND d.datname = current_database()"
            )).scalar_one())  # fmt: skip

    def first() -> None:
        db = flows[0].sql
        assert db is not None
        with db.transaction() as conn:
            enqueue(0, conn)
            barrier.wait(timeout=60)
            deadline = 600  # bounded: 600 looks at the second editor, about 6 s
            while not (second_done.wait(timeout=0.01) or waiting_for_a_lock()):
                deadline -= 1
                assert deadline > 0, "the second enqueue neither finished nor waited"

    def second() -> None:
        barrier.wait(timeout=60)
        try:
            enqueue(1)
        finally:
            second_done.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    return outcome


# -- quiet hours ----------------------------------------------------------------------------
def test_quiet_hours_of_account_and_category_move_each_delivery(sql_store: SqlStore) -> None:
    settings = make_settings(
        accounts={
            "mastodon": {"platform": "mastodon", "base_url": "https://social.example",
                         "quiet_hours": "22:00-06:00"},
            "website": {"platform": "feed", "path": "/nonexistent/site"},
        },
        quiet_hours={"nachrichten": "22:15-05:00"},
    )  # fmt: skip
    desk = Desk(sql_store, settings)
    planned = desk.plan("Spät", category="nachrichten", at="2026-03-20 22:30")
    [stored] = desk.as_("anna").enqueue([planned])
    due = {d.account: d.due_at for d in sql_store.deliveries_of(stored.post_ids[0])}
    # mastodon: its own window and the category's; the later end counts
    assert due["mastodon"] == datetime(2026, 3, 21, 5, 0, tzinfo=UTC)  # 06:00 CET
    assert due["website"] == datetime(2026, 3, 21, 4, 0, tzinfo=UTC)  # 05:00 CET
    # 21:59 is before every window
    early = desk.plan("Früher", category="veranstaltung", at="2026-03-20 21:59")
    [stored] = desk.as_("anna").enqueue([early])
    due = {d.account: d.due_at for d in sql_store.deliveries_of(stored.post_ids[0])}
    assert due["mastodon"] == datetime(2026, 3, 20, 20, 59, tzinfo=UTC)


# -- recurring posts -------------------------------------------------------------------------
def test_series_materialises_occurrences_across_dst_at_8(
    sql_store: SqlStore, tmp_path: Path
) -> None:
    """Sundays at 08:00 over the March change: 07:00 UTC, then 06:00 UTC."""
    desk = Desk(sql_store, make_settings(recurrence={"horizon_days": 16}))
    [stored] = desk.as_("anna").enqueue([desk.plan_file(series_file(tmp_path))])
    assert stored.series_id is not None
    dues = sorted(sql_store.deliveries_of(i)[0].due_at for i in stored.post_ids)
    assert dues == [
        datetime(2026, 3, 22, 7, 0, tzinfo=UTC),
        datetime(2026, 3, 29, 6, 0, tzinfo=UTC),
        datetime(2026, 4, 5, 6, 0, tzinfo=UTC),
    ]


def test_materialising_is_idempotent_even_with_two_daemons_at_once(
    sql_store: SqlStore, tmp_path: Path
) -> None:
    desk = Desk(sql_store, make_settings(recurrence={"horizon_days": 7}))
    desk.as_("anna").enqueue([desk.plan_file(series_file(tmp_path))])
    assert desk.as_("daemon").materialise("d0") == []  # nothing new yet
    desk.clock.advance(timedelta(days=21))
    # two daemons, each with its own connections, materialise at the same moment
    second = SqlStore(sql_store.url, db_clock=False)
    try:
        flows = [
            Workflow(Crosspost(desk.settings, s, clock=desk.clock), actor=f"d{n}")
            for n, s in enumerate((sql_store, second))
        ]
        barrier = threading.Barrier(2)
        created: list[list[int]] = [[], []]

        def run(n: int) -> None:
            barrier.wait()
            created[n] = flows[n].materialise(f"d{n}")

        threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        second.close()
    assert len(created[0]) + len(created[1]) >= 1
    occurrences = [p.publish_at for p, _ds in sql_store.list_posts()]
    assert len(occurrences) == len(set(occurrences))  # no occurrence twice
    assert desk.as_("daemon").materialise("d3") == []


def test_series_due_at_the_same_instant_are_spread(sql_store: SqlStore, tmp_path: Path) -> None:
    desk = Desk(sql_store, make_settings(recurrence={"horizon_days": 3, "spread_seconds": 90}))
    flow = desk.as_("anna")
    [a] = flow.enqueue([desk.plan_file(series_file(tmp_path, "a", "Wertstoffhof"))])
    [b] = flow.enqueue([desk.plan_file(series_file(tmp_path, "b", "Kleiderladen"))])
    due_a = sql_store.deliveries_of(a.post_ids[0])[0].due_at
    due_b = sql_store.deliveries_of(b.post_ids[0])[0].due_at
    assert due_b - due_a == timedelta(seconds=90)


def test_cancel_stops_the_series(sql_store: SqlStore, tmp_path: Path) -> None:
    desk = Desk(sql_store, make_settings(recurrence={"horizon_days": 10}))
    [stored] = desk.as_("anna").enqueue([desk.plan_file(series_file(tmp_path))])
    n, stopped = desk.as_("anna").cancel(stored.post_ids[0])
    assert stopped == stored.series_id
    assert n == 2 * len(stored.post_ids)  # every made occurrence, both accounts
    desk.clock.advance(timedelta(days=30))
    assert desk.as_("daemon").materialise("d") == []
    [info] = desk.as_("x").series()
    assert info.cancelled_at is not None
    assert info.next_post is None


def test_approving_one_occurrence_approves_the_series(sql_store: SqlStore, tmp_path: Path) -> None:
    desk = Desk(sql_store, make_settings(approval={"required": True},
                                         recurrence={"horizon_days": 8}))  # fmt: skip
    [stored] = desk.as_("anna").enqueue([desk.plan_file(series_file(tmp_path))])
    assert all(set(desk.states(i)) == {DeliveryState.DRAFT} for i in stored.post_ids)
    with pytest.raises(Refused):
        desk.as_("anna").approve(stored.post_ids[0])
    approval = desk.as_("bernd").approve(stored.post_ids[0])
    assert sorted(approval.post_ids) == sorted(stored.post_ids)
    desk.clock.advance(timedelta(days=14))
    later = desk.as_("daemon").materialise("d")
    assert later
    assert all(set(desk.states(i)) == {DeliveryState.SCHEDULED} for i in later)


# -- edit ------------------------------------------------------------------------------------
def test_edit_rejects_an_over_long_text_and_changes_nothing(
    sql_store: SqlStore, tmp_path: Path
) -> None:
    desk = Desk(sql_store)
    post_id = desk.as_("anna").enqueue([desk.plan("Kurz.", link=f"{SITE}/k")])[0].post_ids[0]
    before = [(d.text, d.state) for d in sql_store.deliveries_of(post_id)]
    edited = tmp_path / "edited.md"
    edited.write_text(desk.as_("anna").edit_form(post_id).replace("Kurz.", "x" * 300))
    with pytest.raises(PostRejected, match="mastodon"):
        desk.as_("anna").apply_edit(post_id, edited)
    assert [(d.text, d.state) for d in sql_store.deliveries_of(post_id)] == before
    assert [a for a, _u, _p in desk.actions(post_id)] == ["enqueue"]


def test_edit_keeps_the_id_and_a_published_post_cannot_be_edited(
    sql_store: SqlStore, tmp_path: Path
) -> None:
    desk = Desk(sql_store)
    post_id = desk.as_("anna").enqueue([desk.plan("Alt.", link=f"{SITE}/k")])[0].post_ids[0]
    edited = tmp_path / "edited.md"
    edited.write_text(desk.as_("anna").edit_form(post_id).replace("Alt.", "Neu."))
    assert "text" in desk.as_("anna").apply_edit(post_id, edited)
    assert {d.text.split("\n")[0] for d in sql_store.deliveries_of(post_id)} == {"Neu."}
    for d in desk.claim():
        sql_store.settle(d, DeliveryState.PUBLISHED, now=desk.clock.now(), remote_id="1")
    with pytest.raises(Refused, match="retract"):
        desk.as_("anna").edit_form(post_id)


# -- audit -------------------------------------------------------------------------------------
def test_every_state_change_has_an_audit_entry(sql_store: SqlStore, tmp_path: Path) -> None:
    desk = Desk(sql_store)
    anna, bernd = desk.as_("anna"), desk.as_("bernd")
    job = anna.enqueue([job_advert(desk)])[0].post_ids[0]
    edited = tmp_path / "e.md"
    edited.write_text(anna.edit_form(job).replace("Fachkraft", "Meisterin"))
    anna.apply_edit(job, edited)
    bernd.approve(job)
    anna.reschedule(job, NOW + timedelta(minutes=5))
    desk.clock.advance(timedelta(minutes=10))
    for d in desk.claim():
        state = DeliveryState.FAILED if d.account == "mastodon" else DeliveryState.PUBLISHED
        sql_store.settle(d, state, now=desk.clock.now(), remote_id="r1", error="nein")
    assert bernd.retry(job) == 1
    website = next(d for d in sql_store.deliveries_of(job) if d.account == "website")
    assert bernd.mark_retracted(website.id)
    assert anna.cancel(job)[0] == 1
    # the cancelled one no longer counts as a duplicate
    other = anna.enqueue([job_advert(desk, at="2026-03-25 09:00")])[0].post_ids[0]
    bernd.reject(other, "doppelt")
    assert desk.actions() == [
        ("enqueue", "anna", job),
        ("edit", "anna", job),
        ("approve", "bernd", job),
        ("reschedule", "anna", job),
        ("retry", "bernd", job),
        ("retract", "bernd", job),
        ("cancel", "anna", job),
        ("enqueue", "anna", other),
        ("reject", "bernd", other),
    ]
