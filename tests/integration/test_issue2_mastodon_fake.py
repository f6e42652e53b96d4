"""Self-check of the Mastodon fake the adapter tests rely on (issue 2): it validates every
request against ``../shared/specs/mastodon-openapi.json``, so a request the API does not
allow is answered like Mastodon (422, or 404 for a path it lacks) and recorded, never
silently accepted."""

from __future__ import annotations

import httpx
from tests.fakes.mastodon import MastodonFake

LINK = "https://www.zv-staedtedreieck.de/aktuelles/weihnachtsmarkt"


def test_the_fake_refuses_requests_the_mastodon_contract_does_not_allow(
    mastodon_fake: MastodonFake,
) -> None:
    """A visibility outside the spec's enum and a path the API does not have are refused
    and recorded; the same status with a valid visibility is accepted."""
    auth = {"Authorization": f"Bearer {mastodon_fake.token}"}
    with httpx.Client(base_url=mastodon_fake.url, headers=auth, timeout=10) as client:
        bad = client.post(
            "/api/v1/statuses", json={"status": f"Hallo\n\n{LINK}", "visibility": "everyone"}
        )
        assert bad.status_code == 422, bad.text
        assert mastodon_fake.statuses == []
        missing = client.post("/api/v1/statusez", json={"status": "Hallo"})
        assert missing.status_code == 404, missing.text
        failures = [str(f) for f in mastodon_fake.validation_errors]
        assert len(failures) == 2, failures
        assert "visibility" in failures[0]
        assert "/api/v1/statusez" in failures[1]

        good = client.post(
            "/api/v1/statuses", json={"status": f"Hallo\n\n{LINK}", "visibility": "public"}
        )
        assert good.status_code == 200, good.text
    assert len(mastodon_fake.statuses) == 1
    assert len(mastodon_fake.validation_errors) == 2  # the valid request added none
    mastodon_fake.validation_errors.clear()  # seen: the fixture's final check is for adapters
