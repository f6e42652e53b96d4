"""Concurrency: ten editors enqueue at once while the daemon publishes (SQLite).

No "database is locked" anywhere, every enqueue succeeds with its own id, and
every post ends published exactly once on Mastodon and in the feed.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.fakes.mastodon import DEFAULT_TOKEN, SPEC_NAME, MastodonFake
from tests.fakes.server import skip_without_spec
from tests.reliability.conftest import (
    SITE,
    Figures,
    has_traceback,
    make_workspace,
    scaled,
)

EDITORS = 10
ROUNDS = scaled(2, 10)
FILES_PER_CALL = scaled(3, 5)


@pytest.fixture
def mastodon() -> Iterator[MastodonFake]:
    skip_without_spec(SPEC_NAME)
    with MastodonFake(latency=0.01, check_responses=False) as fake:
        yield fake


def test_ten_editors_enqueue_while_the_daemon_publishes(
    mastodon: MastodonFake, tmp_path: Path, figures: Figures
) -> None:
    """10 `crosspost enqueue` processes start together, again and again, while the daemon
    claims and publishes and readers list the queue: every command succeeds, nothing
    says "database is locked", no post is lost and none is published twice."""
    ws = make_workspace(
        tmp_path / "ws",
        {
            "mastodon": {
                "platform": "mastodon",
                "base_url": mastodon.url,
                "token_env": "CROSSPOST_TEST_MASTODON_TOKEN",
            },
            "website": {"platform": "feed", "path": str(tmp_path / "site")},
        },
        env={"CROSSPOST_TEST_MASTODON_TOKEN": DEFAULT_TOKEN},
    )
    posts = tmp_path / "posts"
    posts.mkdir()
    log = tmp_path / "daemon.log"
    daemon = ws.start_daemon(log=log)
    ws.wait_ready(daemon)

    barrier = threading.Barrier(EDITORS + 1)
    outputs: list[tuple[int, str, str]] = []
    ids: list[int] = []
    lock = threading.Lock()

    def editor(n: int) -> None:
        for round_ in range(ROUNDS):
            files = []
            for k in range(FILES_PER_CALL):
                path = posts / f"e{n}-r{round_}-{k}.md"
                link = f"{SITE}/gleichzeitig/{n}-{round_}-{k}"
                path.write_text(
                    f'+++\nlink = "{link}"\n+++\nRedaktion {n}, Runde {round_}, Beitrag {k}.\n'
                )
                files.append(str(path))
            barrier.wait(timeout=120)
            result = ws.run("enqueue", *files, "--json", check=False, timeout=120)
            with lock:
                outputs.append((result.returncode, result.stdout, result.stderr))
                if result.returncode == 0:
                    ids.extend(p["id"] for p in json.loads(result.stdout))

    def reader() -> None:
        for _ in range(ROUNDS):
            barrier.wait(timeout=120)
            for args in (["status"], ["list", "--status", "pending"]):
                result = ws.run(*args, check=False, timeout=120)
                with lock:
                    outputs.append((result.returncode, result.stdout, result.stderr))

    threads = [threading.Thread(target=editor, args=(n,)) for n in range(EDITORS)]
    threads.append(threading.Thread(target=reader))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    expected = EDITORS * ROUNDS * FILES_PER_CALL

    failures = [o for o in outputs if o[0] != 0]
    assert failures == [], failures[:3]
    assert not any("locked" in o[2] or has_traceback(o[1] + o[2]) for o in outputs)
    assert len(ids) == expected
    assert len(set(ids)) == expected

    def all_published() -> bool:
        assert daemon.poll() is None, log.read_text()
        counts = ws.json("status")["counts"]
        return bool(counts["published"] == 2 * expected)

    ws.wait_until(all_published, timeout=scaled(120, 600), what="every post to be published")
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=60) == 0
    output = log.read_text()
    assert "locked" not in output
    assert not has_traceback(output)

    texts = [s.text for s in mastodon.statuses]
    copies = [
        sum(1 for t in texts if t.endswith(f"{SITE}/gleichzeitig/{n}-{round_}-{k}"))
        for n in range(EDITORS)
        for round_ in range(ROUNDS)
        for k in range(FILES_PER_CALL)
    ]
    figures.add("concurrency.editor_processes", EDITORS * ROUNDS)
    figures.add("concurrency.posts", expected)
    figures.add("concurrency.lost", copies.count(0))
    figures.add("concurrency.duplicates", sum(c - 1 for c in copies if c > 1))
    assert copies == [1] * expected
    assert len(texts) == expected
