"""Issue 5, fencing, on every backend: a daemon whose lease expired and was taken over
cannot write any part of the row the other daemon now owns -- not its progress
checkpoint (a Bluesky rkey, a Meta container id), not its lease -- while the new owner
can. (Attempts and settling: ``test_store.py``; batches: ``test_store_batches.py``.)
"""

from __future__ import annotations

from datetime import timedelta

from tests.contract.test_store import AFTER_LEASE, LEASE, NOW, claim, delivery, enqueue, only

from crosspost.models import DeliveryState
from crosspost.store.base import Store


def test_a_stale_daemon_can_neither_checkpoint_nor_renew_a_row_taken_over(store: Store) -> None:
    post_id = enqueue(store)
    held_by_a = only(claim(store, "worker-a"))
    assert store.save_progress(held_by_a, {"rkey": "from-a"}, now=NOW)
    assert store.reap_expired(now=AFTER_LEASE) == 1
    held_by_b = only(claim(store, "worker-b", now=AFTER_LEASE))
    assert held_by_b.lease_token > held_by_a.lease_token

    # A wakes up late: its checkpoint and its lease renewal change nothing
    assert not store.save_progress(held_by_a, {"rkey": "stale-a"}, now=AFTER_LEASE)
    later = AFTER_LEASE + timedelta(seconds=30)
    store.extend_leases("worker-a", [held_by_a.id], now=later, lease=LEASE)
    current = delivery(store, post_id)
    assert current.worker == "worker-b"
    assert current.lease_token == held_by_b.lease_token
    assert current.lease_until == held_by_b.lease_until
    assert dict(current.progress or {}).get("rkey") != "stale-a"

    # B, the owner, checkpoints, renews and settles
    assert store.save_progress(held_by_b, {"rkey": "from-b"}, now=later)
    store.extend_leases("worker-b", [held_by_b.id], now=later, lease=LEASE)
    renewed = delivery(store, post_id)
    assert renewed.lease_until == later + LEASE
    assert dict(renewed.progress or {})["rkey"] == "from-b"
    assert store.settle(held_by_b, DeliveryState.PUBLISHED, now=later, remote_id="b")
    assert delivery(store, post_id).state is DeliveryState.PUBLISHED
