"""A minimal, fast Mastodon-shaped server for benchmarks (not for correctness tests).

asyncio, HTTP/1.1 keep-alive, no validation: every ``POST /api/v1/statuses``
waits ``--latency`` seconds (the platform's own processing time), then answers
201 with a new id. The arrival time of every status is kept so the harness
can measure lateness; ``GET /__stats`` returns them.

Every answer carries Mastodon's rate-limit headers, as a real instance sends them
on every API answer: ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and
``X-RateLimit-Reset`` (ISO 8601 with microseconds, like Mastodon's
``Time#iso8601(6)``: the end of the current 300 s window, windows aligned to the
epoch as Mastodon's throttle aligns them), counted per ``Authorization`` header. So
the daemon takes the path a real instance makes it take: every settlement writes
the account's budget and every claim of a budgeted account is capped by it
(issue 5). The budget is :data:`LIMIT` = 1 000 000 requests per window, where
Mastodon grants 300: one fake serves at most 10 000 requests (a throughput
round: the floor's 5 000 and the daemon's), a hundredth of one window's budget,
so the cap never holds a claim back and the benchmark measures what keeping the
budget costs, not a platform's limit.
``--no-rate-limit-headers`` leaves them out (the path the daemon took before
issue 5, and still takes for platforms that state no budget), so both can be
measured on the same tree.

Run: ``python bench/fakeplatform.py --port 0 --latency 0.05`` (prints its URL).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import signal
import sys
import time
from datetime import UTC, datetime
from typing import Any

#: requests per window: far more than any benchmark sends (see the docstring)
LIMIT = 1_000_000
#: the window's length in seconds (Mastodon's API throttle: 300 requests per 5 minutes)
WINDOW = 300

INSTANCE = {
    "domain": "bench.local",
    "configuration": {"statuses": {"max_characters": 500, "characters_reserved_per_url": 23}},
}
ACCOUNT = {"id": "1", "acct": "bench", "url": "http://127.0.0.1/@bench", "followers_count": 0}


class Platform:
    def __init__(self, latency: float, *, rate_limit_headers: bool = True) -> None:
        self.latency = latency
        self.rate_limit_headers = rate_limit_headers
        #: requests per Authorization header in the current window (its start, the counts)
        self.window = 0
        self.counts: dict[str, int] = {}
        self.ids = itertools.count(1)
        self.arrivals: list[tuple[float, str]] = []  # (unix time, status text's first line)
        self.keys: dict[str, int] = {}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                method, path, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while True:
                    h = await reader.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = h.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                length = int(headers.get("content-length", "0") or 0)
                body = await reader.readexactly(length) if length else b""
                status, payload = await self.route(method, path.split("?")[0], headers, body)
                data = json.dumps(payload).encode()
                limits = self.limit_headers(headers) if self.rate_limit_headers else ""
                writer.write(
                    f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\n"
                    f"{limits}Content-Length: {len(data)}\r\n\r\n".encode()
                    + data
                )
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            writer.close()

    def limit_headers(self, headers: dict[str, str]) -> str:
        """Mastodon's three rate-limit headers for this answer (this request counted)."""
        now = time.time()
        window = int(now) // WINDOW * WINDOW
        if window != self.window:
            self.window, self.counts = window, {}
        token = headers.get("authorization", "")
        used = self.counts[token] = self.counts.get(token, 0) + 1
        reset = datetime.fromtimestamp(window + WINDOW, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return (
            f"X-RateLimit-Limit: {LIMIT}\r\n"
            f"X-RateLimit-Remaining: {max(0, LIMIT - used)}\r\n"
            f"X-RateLimit-Reset: {reset}\r\n"
        )

    async def route(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any]:
        if path == "/api/v2/instance":
            return 200, INSTANCE
        if path == "/api/v1/accounts/verify_credentials":
            return 200, ACCOUNT
        if path == "/__stats":
            return 200, {"arrivals": self.arrivals}
        if method == "POST" and path == "/api/v1/statuses":
            arrived = time.time()
            text = json.loads(body or b"{}").get("status", "")
            key = headers.get("idempotency-key")
            self.arrivals.append((arrived, text.split("\n", 1)[0]))
            await asyncio.sleep(self.latency)
            if key and key in self.keys:
                number = self.keys[key]
            else:
                number = next(self.ids)
                if key:
                    self.keys[key] = number
            return 200, {"id": str(number), "url": f"http://127.0.0.1/@bench/{number}"}
        return 404, {"error": "not found"}


async def serve(port: int, latency: float, *, rate_limit_headers: bool = True) -> None:
    platform = Platform(latency, rate_limit_headers=rate_limit_headers)
    server = await asyncio.start_server(platform.handle, "127.0.0.1", port, backlog=1024)
    actual = server.sockets[0].getsockname()[1]
    print(json.dumps({"url": f"http://127.0.0.1:{actual}", "port": actual}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument(
        "--no-rate-limit-headers",
        action="store_true",
        help="answer without X-RateLimit-* (the daemon then keeps no budget)",
    )
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.latency, rate_limit_headers=not args.no_rate_limit_headers))
    sys.exit(0)


if __name__ == "__main__":
    main()
