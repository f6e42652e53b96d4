"""Issue 5: editors and daemons as separate PostgreSQL roles, set up exactly as
``docs/scaling.md`` says, through the installed ``crosspost`` command.

The roles, the database and the GRANTs are taken from the SQL blocks of the document
(only the database's name is the test's own); ``db upgrade`` runs as the owner role,
the editors' commands as the editor role and the daemon (with its ``ExecStartPre=``
``db upgrade``) as the daemon role, each through ``CROSSPOST_DATABASE__URL`` as in the
document's systemd example. The integration test in
``tests/integration/test_postgresql_store.py`` checks the same grants store method by
store method; this one proves that the commands people run get by with them.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url
from tests.acceptance.conftest import SITE, Workspace, clean_env, write_config
from tests.acceptance.test_workflow import WORKFLOW_CONFIG, actions, as_user, enqueue_id
from tests.fakes.mastodon import MastodonFake
from tests.pgfixture import PgServer

pytestmark = pytest.mark.acceptance

SCALING_DOC = Path(__file__).resolve().parents[2] / "docs" / "scaling.md"
ROLES = ("crosspost_owner", "crosspost_daemon", "crosspost_editor")


def _sql_blocks() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", SCALING_DOC.read_text(encoding="utf-8"), re.DOTALL)


def _statements(block: str) -> list[str]:
    """The block's statements, comments left out."""
    lines = [line.split("--")[0] for line in block.splitlines()]
    return [s.strip() for s in " ".join(lines).split(";") if s.strip()]


@pytest.fixture
def roles(pg_server: PgServer) -> Iterator[dict[str, str]]:
    """The three roles and the database of docs/scaling.md; each role's URL."""
    [roles_sql] = [b for b in _sql_blocks() if "CREATE ROLE" in b]
    database = pg_server.new_name("roles")
    created: list[str] = []
    try:
        for statement in _statements(roles_sql):
            if statement.startswith("CREATE ROLE"):
                pg_server.admin(statement)
                created.append(statement.split()[2])
            else:  # CREATE DATABASE crosspost OWNER crosspost_owner
                assert statement.startswith("CREATE DATABASE crosspost "), statement
                pg_server.admin(statement.replace(" crosspost ", f' "{database}" ', 1))
        assert sorted(created) == sorted(ROLES)
        yield {role: pg_server.url_of(database, user=role) for role in ROLES}
    except psycopg.errors.DuplicateObject:
        pytest.skip(f"roles {ROLES} exist on this server already; not touching them")
    finally:
        pg_server.drop_database(database)
        for role in created:
            pg_server.admin(f"DROP ROLE IF EXISTS {role}")


def _as(ws: Workspace, url: str) -> None:
    ws.env["CROSSPOST_DATABASE__URL"] = url


def test_editors_and_daemons_work_with_the_documented_grants_and_no_more(
    tmp_path: Path, roles: dict[str, str], mastodon: MastodonFake
) -> None:
    """Owner migrates and grants; the editor role enqueues, approves, lists, shows,
    reschedules, cancels and retries; the daemon role migrates nothing, publishes and
    heartbeats; neither gets what the other one has."""
    write_config(tmp_path, mastodon.url, roles["crosspost_owner"])
    with (tmp_path / "crosspost.toml").open("a", encoding="utf-8") as config:
        config.write(WORKFLOW_CONFIG)
    ws = Workspace(tmp_path, clean_env(tmp_path), roles["crosspost_owner"])
    try:
        _as(ws, roles["crosspost_owner"])
        ws.run("db", "upgrade")
        [grants_sql] = [b for b in _sql_blocks() if "GRANT SELECT" in b]
        owner = make_url(roles["crosspost_owner"]).set(drivername="postgresql")
        with psycopg.connect(owner.render_as_string(hide_password=False)) as conn:
            conn.execute(grants_sql)  # the block exactly as documented

        # -- the editors' work ------------------------------------------------------------
        _as(ws, roles["crosspost_editor"])
        now_id = enqueue_id(ws.run("enqueue", "--text", "Sofort.", "--link",
                                   f"{SITE}/a/sofort", "--to", "mastodon"))  # fmt: skip
        later_id = enqueue_id(ws.run("enqueue", "--text", "Später.", "--link",
                                     f"{SITE}/a/spaeter", "--at", "+2d"))  # fmt: skip
        draft = as_user(ws, "anna", "enqueue", "--text", "Wir suchen eine Fachkraft.",
                        "--link", f"{SITE}/stellen/1", "--category", "stellenangebot",
                        "--to", "mastodon")  # fmt: skip
        draft_id = enqueue_id(draft)
        as_user(ws, "bernd", "approve", str(draft_id))
        rejected = enqueue_id(as_user(ws, "anna", "enqueue", "--text", "Noch eine Stelle.",
                                      "--link", f"{SITE}/stellen/2", "--category",
                                      "stellenangebot", "--to", "mastodon"))  # fmt: skip
        as_user(ws, "bernd", "reject", str(rejected), "--reason", "zu früh")
        kept_id = enqueue_id(ws.run("enqueue", "--text", "Bleibt.", "--link",
                                    f"{SITE}/a/bleibt", "--at", "+2d"))  # fmt: skip
        ws.run("reschedule", str(later_id), "--at", "+3d")
        ws.run("cancel", str(later_id))
        weekly = tmp_path / "wertstoffhof.md"
        weekly.write_text(
            f'+++\ntitle = "Wertstoffhof"\nlink = "{SITE}/wertstoffhof"\n'
            'repeat = "FREQ=WEEKLY;BYDAY=FR;BYHOUR=8;BYMINUTE=0"\n+++\n'
            "Der Wertstoffhof hat samstags von 9 bis 13 Uhr geöffnet.\n",
            encoding="utf-8",
        )  # fmt: skip
        assert ws.json("enqueue", str(weekly))[0]["series"] is not None
        assert {p["id"] for p in ws.json("list")} >= {now_id, later_id, draft_id}
        assert ws.json("show", str(later_id))["state"] == "cancelled"
        ws.run("log")
        ws.run("status")
        assert actions(ws, draft_id) == [("enqueue", "anna"), ("approve", "bernd")]
        # an editor cannot take a daemon's part: no schema change, no heartbeat row
        assert ws.run("daemon", "--once", check=False).returncode != 0

        # -- the daemon's work ------------------------------------------------------------
        _as(ws, roles["crosspost_daemon"])
        ws.run("db", "upgrade")  # the unit's ExecStartPre=: the schema is current
        # a longer horizon: the daemon makes the series' further occurrences
        before = {p["id"] for p in ws.json("list")}
        ws.config.write_text(
            ws.config.read_text().replace("horizon_days = 15", "horizon_days = 60")
        )
        daemon = ws.start_daemon()
        ws.wait_ready(daemon)
        listed = ws.json("status")["daemons"]
        assert [d["pid"] for d in listed] == [daemon.pid]
        ws.wait_until(
            lambda: all(
                ws.json("show", str(i))["state"] == "published" for i in (now_id, draft_id)
            ),
            timeout=30,
            what="the editor's posts to be published by the daemon role",
        )
        assert len(mastodon.statuses_containing(f"{SITE}/a/sofort")) == 1
        made = {p["id"] for p in ws.json("list")} - before
        assert len(made) >= 4, "the daemon role made no occurrences of the series"
        assert len(mastodon.statuses_containing(f"{SITE}/stellen/1")) == 1
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0, ws.output(daemon)
        assert "permission denied" not in ws.output(daemon)

        # a daemon cannot change an editor's post (it may only add a series' occurrences)
        refused = ws.run("reschedule", str(kept_id), "--at", "+3d", check=False)
        assert refused.returncode != 0
        assert "permission denied for table posts" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert ws.json("show", str(kept_id))["state"] == "scheduled"

        # -- back to the editor: a failed delivery is retried ---------------------------------
        _as(ws, roles["crosspost_editor"])
        ws.run("retry", str(now_id), check=False)  # nothing failed: nothing to retry
    finally:
        ws.stop_all()
