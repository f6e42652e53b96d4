"""Issue 3: the platform tests cannot pass CI by skipping. Outside CI a missing platform
contract skips the tests that need it; with ``CROSSPOST_TEST_REQUIRE_PLATFORMS=1`` (set by
``.ci/run``) it fails them."""

from __future__ import annotations

from pathlib import Path

import pytest
import tests.fakes.server as server


def test_a_missing_contract_skips_outside_ci_and_fails_in_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server, "SPECS_DIR", tmp_path)
    monkeypatch.delenv(server.REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"x-openapi\.json not found"):
        server.skip_without_spec("x-openapi.json")
    monkeypatch.setenv(server.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="CI needs it"):
        server.skip_without_spec("x-openapi.json")
    (tmp_path / "x-openapi.json").write_text("{}")
    assert server.skip_without_spec("x-openapi.json") == tmp_path / "x-openapi.json"


def test_ci_sets_the_requirement() -> None:
    """.ci/run exports the variable before `make test`."""
    script = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    export = script.index(f"export {server.REQUIRE_ENV}=1")
    assert export < script.rindex("\nmake test")
