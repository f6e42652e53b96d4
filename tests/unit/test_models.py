"""A post's state, derived from its deliveries' states (never stored)."""

from __future__ import annotations

import pytest

from crosspost.models import DeliveryState, post_state

S = DeliveryState


def test_post_without_deliveries_is_empty() -> None:
    """No deliveries at all gives the state "empty"."""
    assert post_state([]) == "empty"


@pytest.mark.parametrize("state", list(DeliveryState))
def test_deliveries_that_agree_give_their_state(state: DeliveryState) -> None:
    """When every delivery is in the same state, the post is in that state."""
    assert post_state([state]) == state.value
    assert post_state([state, state, state]) == state.value


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        # an unknown outcome needs the admin, whatever else happened
        ([S.PUBLISHED, S.UNKNOWN], "unknown"),
        ([S.FAILED, S.UNKNOWN, S.PUBLISHING], "unknown"),
        # a failure next to anything else (but unknown) is a partial failure
        ([S.PUBLISHED, S.FAILED], "partly_failed"),
        ([S.FAILED, S.SCHEDULED], "partly_failed"),
        ([S.FAILED, S.PUBLISHING], "partly_failed"),
        ([S.FAILED, S.CANCELLED], "partly_failed"),
        # something in flight
        ([S.PUBLISHED, S.PUBLISHING], "publishing"),
        ([S.SCHEDULED, S.PUBLISHING], "publishing"),
        # some out, some still waiting
        ([S.PUBLISHED, S.SCHEDULED], "partly_published"),
        ([S.PUBLISHED, S.RETRYING], "partly_published"),
        ([S.PUBLISHED, S.RETRYING, S.CANCELLED], "partly_published"),
        # nothing out yet, something waiting
        ([S.SCHEDULED, S.RETRYING], "scheduled"),
        ([S.RETRYING, S.CANCELLED], "scheduled"),
        # settled in different ways
        ([S.PUBLISHED, S.CANCELLED], "mixed"),
        ([S.PUBLISHED, S.RETRACTED], "mixed"),
        ([S.CANCELLED, S.RETRACTED], "mixed"),
    ],
)
def test_mixed_deliveries_give_the_most_urgent_state(
    states: list[DeliveryState], expected: str
) -> None:
    """Unknown beats failed beats publishing beats waiting; settled mixtures are "mixed"."""
    assert post_state(states) == expected
    assert post_state(list(reversed(states))) == expected  # order does not matter


@pytest.mark.parametrize(
    ("state", "final", "pending"),
    [
        (S.SCHEDULED, False, True),
        (S.PUBLISHING, False, False),
        (S.PUBLISHED, True, False),
        (S.RETRYING, False, True),
        (S.FAILED, True, False),
        (S.UNKNOWN, False, False),
        (S.CANCELLED, True, False),
        (S.RETRACTED, True, False),
    ],
)
def test_final_and_pending_states(state: DeliveryState, final: bool, pending: bool) -> None:
    """Only scheduled and retrying wait to be claimed; unknown is not final (it is reconciled)."""
    assert (state.is_final, state.is_pending) == (final, pending)
