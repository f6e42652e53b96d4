"""The crash campaign: many posts, several platforms, the daemon SIGKILLed again and again.

One campaign (:func:`run_campaign`) is reproducible from its seed: the posts,
their due times, which carry an image, the faults injected into the platforms
and the instants of the kills all come from ``random.Random(seed)`` (the
processes' own timing is not). It:

1. opens every platform's test server (``tests.fakes.harness.HARNESSES``) with
   response latency, and an installation with one account on each plus the
   website's feed;
2. enqueues the posts, due at spread instants over the campaign;
3. starts the daemon, waits until it has sent requests, lets a random instant
   pass, SIGKILLs it and starts it again — ``kills`` times — while faults
   (5xx, resets, lost answers, requests that land after the client gave up,
   429) are queued on the platforms;
4. lets a last daemon finish the queue, stops it with SIGTERM;
5. counts, for every delivery, the copies on its platform.

:class:`Outcome` holds the figures; the test asserts on them and
``bench/reliability.py`` reports them.
"""

from __future__ import annotations

import contextlib
import functools
import json
import random
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.fakes.harness import HARNESSES, Harness
from tests.fakes.server import (
    FakeServer,
    Fault,
    delay,
    lose_response,
    rate_limit,
    reset,
    status,
)
from tests.reliability.conftest import SITE, Workspace, make_workspace

from crosspost.media import fetches_public_media

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
    "0000000c4944415478da63f8cfc000000301010018dd8db00000000049454e44ae426082"
)
#: faults queued on the platforms between kills, with their relative weight
FAULT_KINDS: list[tuple[str, Fault, int]] = [
    ("status 503", status(503), 3),
    ("status 500", status(500), 1),
    ("reset", reset(), 2),
    ("lost answer", lose_response(), 2),
    ("landed after the timeout", delay(3, apply=True), 1),
    ("429 Retry-After", rate_limit(1), 1),
]


#: the fakes' labels of the faults above, as the report names them
FAULT_NAMES = {
    "status(503)": "status 503",
    "status(500)": "status 500",
    "reset": "reset",
    "lose_response": "lost answer",
    "delay": "timeout after landing",
    "status(429)": "429 Retry-After",
}


@dataclass
class Outcome:
    """What one campaign did and found."""

    seed: int
    platforms: list[str]
    posts: int
    kills: int = 0
    deliveries: int = 0
    published: int = 0
    duplicates: int = 0
    lost: int = 0
    unknown: int = 0
    unknown_not_listed: int = 0
    stuck: int = 0
    tracebacks: int = 0
    seconds: float = 0.0
    faults: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    by_platform: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["faults"] = dict(self.faults)
        data["problems"] = self.problems[:20]
        return data


def run_campaign(
    root: Path,
    *,
    seed: int,
    posts: int,
    kills: int,
    platforms: list[str],
    latency: float = 0.03,
    database_url: str | None = None,
    survivors: int = 0,
) -> Outcome:
    """One campaign; with ``survivors``, that many daemons run beside the one killed
    again and again (a shared PostgreSQL, say) and must finish the queue alone."""
    rng = random.Random(seed)
    outcome = Outcome(seed=seed, platforms=platforms, posts=posts)
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        harnesses: dict[str, Harness] = {
            name: stack.enter_context(HARNESSES[name]()) for name in platforms
        }
        for harness in harnesses.values():
            harness.server.latency = latency
            lift_quotas(harness.server)
        ws = make_workspace(
            root,
            {
                **{name: h.account() for name, h in harnesses.items()},
                "website": {"platform": "feed", "path": str(root / "site")},
            },
            env={h.token_env: h.token for h in harnesses.values()},
            daemon={
                "lease_seconds": 10,
                "poll_interval": 0.05,
                "backoff_base": 0.2,
                "backoff_max": 5,
                "max_attempts": 30,
                "http_timeout": 2,
                "max_inline_wait": 2,
            },
            database_url=database_url,
        )
        stack.callback(ws.stop_all)
        # Instagram and Threads fetch images from the website's public URL, which no test
        # server serves: with them in the campaign, posts are text only.
        images = all(h.supports_images for h in harnesses.values()) and not any(
            fetches_public_media(name) for name in harnesses
        )
        links = enqueue_posts(ws, rng, posts, spread=kills * 1.3, images=images)
        log = root / "daemon.log"
        steady = [ws.start_daemon(log=root / f"survivor-{n}.log") for n in range(survivors)]

        def creates() -> int:
            return sum(len(h.server.requests_to(h.create_route)) for h in harnesses.values())

        for _ in range(kills):
            queue_faults(rng, harnesses)
            daemon = ws.start_daemon(log=log)
            before = creates()
            deadline = time.monotonic() + 10
            while creates() == before and daemon.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)  # polling the fakes' request logs for the daemon's first request
            time.sleep(rng.uniform(0.0, 0.6))  # the random instant of the kill
            assert daemon.poll() is None, f"the daemon died by itself:\n{log.read_text()[-3000:]}"
            daemon.send_signal(signal.SIGKILL)
            daemon.wait(timeout=30)
            outcome.kills += 1
        # without survivors a last daemon finishes the queue; with them, they do
        finishers = [(d, root / f"survivor-{n}.log") for n, d in enumerate(steady)] or [
            (ws.start_daemon(log=log), log)
        ]
        ws.wait_until(
            lambda: all(alive(d, f) for d, f in finishers) and settled(ws, harnesses),
            timeout=120 + posts,
            what="the queue to be worked off after the last kill",
        )
        # requests that were delayed past the client's timeout land now; let them finish
        for h in harnesses.values():
            h.server.wait_for(functools.partial(all_answered, h.server), timeout=15)
        for daemon, _log in finishers:
            daemon.send_signal(signal.SIGTERM)
        for daemon, daemon_log in finishers:
            assert daemon.wait(timeout=60) == 0, daemon_log.read_text()[-3000:]
        check(ws, harnesses, links, outcome)
        output = "".join(f.read_text() for f in {log, *(f for _d, f in finishers)} if f.exists())
        outcome.tracebacks = output.count("Traceback (most recent call last)") + output.count(
            "internal error"
        )
        for h in harnesses.values():
            outcome.faults.update(
                FAULT_NAMES.get(r.fault, r.fault) for r in h.server.requests if r.fault
            )
            assert_clean(h.server)
    outcome.seconds = round(time.monotonic() - started, 1)
    return outcome


def all_answered(server: FakeServer) -> bool:
    """Every request was processed (delayed ones included), or dropped by a fault."""
    dropped = ("reset", "lose_response")
    return all(r.status is not None or r.fault in dropped for r in server.requests)


def lift_quotas(server: FakeServer) -> None:
    """Raise the fakes' request and post quotas out of reach.

    Hundreds of posts in a minute exceed what Mastodon (300 requests in 5 minutes),
    X or Meta allow; the daemon then rightly waits for hours. The campaign is about
    crashes; honouring the quotas is the fault and contract suites' business.
    """
    for quota in ("rate_limit", "daily_limit", "publish_limit"):
        if isinstance(getattr(server, quota, None), int):
            setattr(server, quota, 10**9)


def assert_clean(server: FakeServer) -> None:
    """No request the platform's contract refuses, no crash of the fake — except requests
    cut short because the daemon was killed while sending them."""
    cut = Counter(
        (r.method, r.path)
        for r in server.requests
        if len(r.body) < int(r.header("content-length") or 0)
    )
    refused = []
    for failure in server.validation_errors:
        if cut[(failure.method, failure.path)] > 0:
            cut[(failure.method, failure.path)] -= 1
        else:
            refused.append(str(failure))
    assert refused == [], f"requests the {server.name} contract refuses:\n" + "\n".join(refused)
    assert server.server_errors == [], f"the {server.name} fake broke: {server.server_errors}"


def enqueue_posts(
    ws: Workspace, rng: random.Random, count: int, *, spread: float, images: bool
) -> list[str]:
    """Post files due over ``spread`` seconds (a fifth due at once), enqueued in batches."""
    folder = ws.root / "posts"
    folder.mkdir()
    (folder / "bild.png").write_bytes(PNG)
    now = datetime.now(UTC) + timedelta(seconds=3)  # the enqueue itself takes a moment
    links, files = [], []
    for n in range(count):
        link = f"{SITE}/absturz/{n:05d}"
        links.append(link)
        front = [f'link = "{link}"']
        if rng.random() > 0.2:
            due = now + timedelta(seconds=rng.uniform(0, spread))
            front.append(f'publish_at = "{due.isoformat()}"')
        if images and rng.random() < 0.1:
            front.append('[[media]]\npath = "bild.png"\nalt = "Das Wappen des Zweckverbands"')
        text = f"Beitrag {n} aus dem Städtedreieck: {rng.choice(WORDS)} {rng.choice(WORDS)}."
        path = folder / f"p{n:05d}.md"
        path.write_text("+++\n" + "\n".join(front) + f"\n+++\n{text}\n", encoding="utf-8")
        files.append(str(path))
    for start in range(0, count, 100):
        ws.run("enqueue", *files[start : start + 100], timeout=300)
    return links


WORDS = ["Weihnachtsmarkt", "Wertstoffhof", "Stellenangebot", "Bürgerbüro", "Freibad",
         "Stadtfest", "Kläranlage", "Busfahrplan", "Seniorentreff", "Kita"]  # fmt: skip


def queue_faults(rng: random.Random, harnesses: dict[str, Harness]) -> None:
    kinds = [(fault, weight) for _name, fault, weight in FAULT_KINDS]
    for h in harnesses.values():
        for _ in range(rng.randint(0, 2)):
            fault = rng.choices([f for f, _w in kinds], weights=[w for _f, w in kinds])[0]
            h.server.inject(fault, route=h.create_route)


def alive(daemon: Any, log: Path) -> bool:
    assert daemon.poll() is None, f"the daemon died:\n{log.read_text()[-3000:]}"
    return True


def settled(ws: Workspace, harnesses: dict[str, Harness]) -> bool:
    """Nothing waits, nothing is being published, and only where the platform cannot
    settle it a delivery is unknown."""
    counts = ws.json("status")["counts"]
    if any(counts[s] for s in ("scheduled", "retrying", "publishing")):
        return False
    if not counts["unknown"]:
        return True
    recovering = {name for name, h in harnesses.items() if h.recovers_unknown} | {"website"}
    unknown = [
        d
        for post in ws.json("list", "--status", "unknown", "--limit", "100000")
        for d in post["deliveries"]
        if d["state"] == "unknown"
    ]
    return not any(d["account"] in recovering for d in unknown)


def check(ws: Workspace, harnesses: dict[str, Harness], links: list[str], out: Outcome) -> None:
    """Count copies per delivery on its platform: duplicates, lost, unknown, stuck."""
    posts = {p["link"]: p for p in ws.json("list", "--limit", "100000")}
    listed = {(p["post"], p["account"]) for p in ws.json("status")["problems"]}
    on_platform = {name: [p.text for p in h.posts()] for name, h in harnesses.items()}
    entries = json.loads((ws.root / "site" / "entries.json").read_text())["entries"]
    for link in links:
        post = posts[link]
        for delivery in post["deliveries"]:
            account, state = delivery["account"], delivery["state"]
            out.deliveries += 1
            stats = out.by_platform.setdefault(account, Counter())
            stats[state] += 1
            if account == "website":
                copies = 1 if str(post["id"]) in entries else 0
            else:
                copies = sum(1 for text in on_platform[account] if link in text)
            out.duplicates += max(0, copies - 1)
            if copies > 1:
                out.problems.append(f"{account}: {copies} copies of {link}")
            if state == "published":
                out.published += 1
                if copies == 0:
                    out.lost += 1
                    out.problems.append(f"{account}: {link} published but not there")
            elif (
                state == "unknown"
                and account != "website"
                and not (harnesses[account].recovers_unknown)
            ):
                out.unknown += 1
                if (post["id"], account) not in listed:
                    out.unknown_not_listed += 1
                    out.problems.append(f"{account}: unknown {link} not listed by status")
            elif state in ("publishing", "scheduled", "retrying"):
                out.stuck += 1
                out.problems.append(f"{account}: {link} stuck in {state}")
            else:
                out.lost += 1
                out.problems.append(f"{account}: {link} ended {state}: {delivery['error']}")
    out.by_platform = {k: dict(v) for k, v in out.by_platform.items()}
