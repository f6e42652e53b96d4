"""``crosspost db upgrade``: run the alembic migrations up to the head.

Several hosts may run ``db upgrade`` at the same moment (a configuration
management run, several daemons' ``ExecStartPre=``): on PostgreSQL a
transaction-scoped advisory lock lets one migrate while the others wait and
then find the schema current; on SQLite ``BEGIN IMMEDIATE`` does the same.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, func, select

MIGRATIONS = Path(__file__).parent / "migrations"
#: the advisory lock ``db upgrade`` holds on PostgreSQL (a bigint; any fixed value will do)
MIGRATION_LOCK = int.from_bytes(b"xpost-db", "big")


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def upgrade(engine: Engine) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Released at commit; alembic reads the current revision only after it.
            connection.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK)))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
