"""The editorial workflow on the SQL store: drafts, approval, series, duplicates, audit.

Every change here writes its ``audit_log`` row in the same transaction as the
change itself, so the log never tells of a change that did not happen nor
misses one that did. Nothing here updates or deletes an audit row.

:class:`SqlWorkflow` is made of one part per concern, each in its module:

=============  ==============================================================
``_base``      the store, transactions, delivery states, writing a post
``dedup``      the duplicate guard (digests, the advisory lock per account)
``queue``      enqueue, cancel, reschedule, retry, retract; quiet-hour holds
``series``     recurring posts and their materialisation
``approval``   drafts, approve, reject (four eyes)
``edit``       ``crosspost edit``
=============  ==============================================================
"""

from __future__ import annotations

from crosspost.store.audit import AuditEntry, read_audit
from crosspost.store.workflow._base import DueRule
from crosspost.store.workflow.approval import Approval, ApprovalWorkflow
from crosspost.store.workflow.dedup import DedupQuery, Duplicate, describe_duplicates, digests
from crosspost.store.workflow.edit import EditWorkflow
from crosspost.store.workflow.queue import QueueWorkflow
from crosspost.store.workflow.series import (
    MATERIALISE_LOCK,
    UTC_ZONE,
    SeriesInfo,
    SeriesWorkflow,
)


class SqlWorkflow(QueueWorkflow, SeriesWorkflow, ApprovalWorkflow, EditWorkflow):
    """The workflow's reads and writes, on the tables of a :class:`SqlStore`."""

    def audit(self, *, post_id: int | None = None, limit: int = 100_000) -> list[AuditEntry]:
        with self.store._read() as conn:
            return read_audit(conn, post_id=post_id, limit=limit)


__all__ = [
    "MATERIALISE_LOCK",
    "UTC_ZONE",
    "Approval",
    "DedupQuery",
    "DueRule",
    "Duplicate",
    "SeriesInfo",
    "SqlWorkflow",
    "describe_duplicates",
    "digests",
]
