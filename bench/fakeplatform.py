"""A minimal, fast Mastodon-shaped server for benchmarks (not for correctness tests).

asyncio, HTTP/1.1 keep-alive, no validation: every ``POST /api/v1/statuses``
waits ``--latency`` seconds (the platform's own processing time), then answers
201 with a new id. The arrival time of every status is kept so the harness
can measure lateness; ``GET /__stats`` returns them.

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
from typing import Any

INSTANCE = {
    "domain": "bench.local",
    "configuration": {"statuses": {"max_characters": 500, "characters_reserved_per_url": 23}},
}
ACCOUNT = {"id": "1", "acct": "bench", "url": "http://127.0.0.1/@bench", "followers_count": 0}


class Platform:
    def __init__(self, latency: float) -> None:
        self.latency = latency
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
                writer.write(
                    f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(data)}\r\n\r\n".encode()
                    + data
                )
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            writer.close()

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


async def serve(port: int, latency: float) -> None:
    platform = Platform(latency)
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
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.latency))
    sys.exit(0)


if __name__ == "__main__":
    main()
