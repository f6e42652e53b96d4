"""A small framework for fake platform servers on 127.0.0.1.

A fake is a :class:`FakeServer` subclass that registers routes and keeps the
platform's state. The server runs in a background thread (one thread per
connection, HTTP/1.1 keep-alive), so synchronous tests, ``asyncio.run`` tests
and subprocess-based acceptance tests can all talk to it::

    with MastodonFake() as fake:
        fake.inject(status(503), route="POST /api/v1/statuses")
        ...                                   # point an adapter at fake.url
        assert fake.validation_errors == []

What every fake gets from here:

* a **request log** (:attr:`FakeServer.requests`): method, path, query, headers,
  body and arrival time of every request, with the status it was answered
  with (``None`` when the connection was dropped);
* **fault injection** (:meth:`FakeServer.inject`): a thread-safe queue of
  faults for one route (``"POST /api/v1/statuses"``, as registered) or for any
  request: :func:`status`, :func:`rate_limit`, :func:`delay`,
  :func:`lose_response`, :func:`reset`; connection refused is
  :meth:`FakeServer.refusing` (stop listening, start again on the same port);
* **validation** (:meth:`FakeServer.validate`, overridden by fakes that have a
  contract such as an OpenAPI file): every request is checked, a failure is
  answered like the platform would and recorded in
  :attr:`FakeServer.validation_errors`, which tests assert is empty;
* **latency** for every answer (``latency=0.05``) for benchmarks;
* a **control API** under ``/__fake__/`` (requests, validation errors, state,
  faults) for fakes running in another process, see :class:`RemoteFake`, and
  :func:`main` to run any fake as ``python -m tests.fakes.<platform> --port N``.
"""

from __future__ import annotations

import argparse
import contextlib
import email.parser
import email.policy
import json
import math
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Generic, Literal, NoReturn, Self, TypeVar

#: contract files (OpenAPI and friends) of the platforms, beside the repository
SPECS_DIR = Path(
    os.environ.get("CROSSPOST_TEST_SPECS")
    or Path(__file__).resolve().parents[2].parent / "shared" / "specs"
)
CONTROL_PREFIX = "/__fake__"
C = TypeVar("C")


def spec_path(name: str) -> Path | None:
    """The contract file ``name`` in :data:`SPECS_DIR`, or None when it is absent."""
    path = SPECS_DIR / name
    return path if path.is_file() else None


#: set (to 1) by ``.ci/run``: a platform contract or the Bluesky PDS that is missing fails
#: the tests that need it instead of skipping them, so CI never passes without them
REQUIRE_ENV = "CROSSPOST_TEST_REQUIRE_PLATFORMS"


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the calling test for ``reason``, or fail it where :data:`REQUIRE_ENV` is set."""
    import pytest

    if os.environ.get(REQUIRE_ENV, "") not in ("", "0"):
        pytest.fail(f"{reason} ({REQUIRE_ENV} is set: CI needs it)", pytrace=False)
    pytest.skip(reason)


def skip_without_spec(name: str) -> Path:
    """The contract file ``name``; skips the calling test when it is absent (fails it
    under :data:`REQUIRE_ENV`)."""
    path = spec_path(name)
    if path is None:
        skip_or_fail(
            f"{name} not found in {SPECS_DIR} (set CROSSPOST_TEST_SPECS to the folder "
            "holding the platform contracts); the fake cannot validate requests without it"
        )
    return path


class ContractFile(Generic[C]):
    """A platform contract, read and parsed once per process: ``contract()`` is the parsed
    contract; the calling test skips where the file is absent."""

    def __init__(self, name: str, parse: Callable[[dict[str, Any]], C]) -> None:
        self.name = name
        self._parse = parse
        self._lock = threading.Lock()
        self._parsed: C | None = None

    def __call__(self) -> C:
        with self._lock:
            if self._parsed is None:
                # Outside the workplace the contract is absent: the test using the fake skips.
                path = skip_without_spec(self.name)
                self._parsed = self._parse(json.loads(path.read_text(encoding="utf-8")))
            return self._parsed


# --- requests and responses -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FormPart:
    """One field of a ``multipart/form-data`` or urlencoded body."""

    name: str
    data: bytes
    filename: str | None = None
    content_type: str | None = None

    @property
    def text(self) -> str:
        return self.data.decode("utf-8")


@dataclass(slots=True)
class FakeRequest:
    """One request as the fake received it (and how it was answered)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names in lower case
    body: bytes
    received_at: datetime  # aware UTC, when the request line and headers were read
    route: str | None = None  # "POST /api/v1/statuses/{id}": the registered route it matched
    params: dict[str, str] = field(default_factory=dict)  # path parameters
    status: int | None = None  # what it was answered with; None: no answer (dropped)
    fault: str | None = None  # the injected fault that applied, if any

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The first query parameter ``name``."""
        values = self.query.get(name)
        return values[0] if values else default

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def form(self) -> dict[str, FormPart]:
        """A multipart or urlencoded body as fields by name (the last one wins)."""
        if self.content_type.startswith("multipart/"):
            return {part.name: part for part in parse_multipart(self.content_type, self.body)}
        pairs = urllib.parse.parse_qsl(self.body.decode("utf-8"), keep_blank_values=True)
        return {name: FormPart(name, value.encode()) for name, value in pairs}

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly view (the control API and failure messages use it)."""
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "route": self.route,
            "status": self.status,
            "fault": self.fault,
            "received_at": self.received_at.isoformat(),
            "headers": {k: v for k, v in self.headers.items() if k != "authorization"},
        }


def parse_multipart(content_type: str, body: bytes) -> list[FormPart]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    parts: list[FormPart] = []
    for part in message.iter_parts():  # type: ignore[attr-defined, unused-ignore]
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        parts.append(
            FormPart(
                name=str(name),
                data=payload if isinstance(payload, bytes) else b"",
                filename=part.get_filename(),
                content_type=part.get_content_type() if part.get("content-type") else None,
            )
        )
    return parts


@dataclass(slots=True)
class FakeResponse:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> FakeResponse:
    body = json.dumps(data, ensure_ascii=False).encode()
    return FakeResponse(
        status, body, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
    )


Handler = Callable[[FakeRequest], FakeResponse]


@dataclass(frozen=True, slots=True)
class ValidationFailure:
    """A request the platform's contract would refuse (a bug in the client)."""

    method: str
    path: str
    errors: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.method} {self.path}: " + "; ".join(self.errors)


# --- faults -------------------------------------------------------------------------------------

FaultKind = Literal["status", "delay", "lose_response", "reset"]


@dataclass(frozen=True, slots=True)
class Fault:
    """What goes wrong with one request. Build them with the functions below."""

    kind: FaultKind
    status: int = 0
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()
    seconds: float = 0.0
    apply: bool = False

    @property
    def label(self) -> str:
        return f"status({self.status})" if self.kind == "status" else self.kind


def status(code: int, body: Any = None, headers: Mapping[str, str] | None = None) -> Fault:
    """Answer ``code`` (with a JSON ``body``) instead of processing the request."""
    if body is None:
        try:
            body = {"error": HTTPStatus(code).phrase}
        except ValueError:
            body = {"error": f"error {code}"}
    return Fault("status", status=code, body=body, headers=tuple((headers or {}).items()))


def rate_limit(retry_after: float = 1, body: Any = None) -> Fault:
    """Answer 429 with ``Retry-After: N`` (whole seconds, rounded up), not processing it."""
    seconds = str(math.ceil(retry_after))
    return status(429, body or {"error": "Too many requests"}, {"Retry-After": seconds})


def delay(seconds: float, *, apply: bool = False) -> Fault:
    """Answer only after ``seconds`` (a client timeout fires first).

    ``apply=False``: the request never lands (answered 503 when the client is
    still there). ``apply=True``: it is processed after the wait, so the
    effect appears after the client gave up.
    """
    return Fault("delay", seconds=seconds, apply=apply)


def lose_response() -> Fault:
    """Process the request (the status is created), then close without answering."""
    return Fault("lose_response")


def reset() -> Fault:
    """Reset the TCP connection (RST, SO_LINGER 0) before processing the request."""
    return Fault("reset")


@dataclass(slots=True)
class _Planned:
    fault: Fault
    route: str | None
    times: int


class FaultQueue:
    """Faults waiting for their request; the first matching one applies (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._planned: list[_Planned] = []

    def add(self, fault: Fault, *, route: str | None = None, times: int = 1) -> None:
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._planned.append(_Planned(fault, route, times))

    def take(self, route: str | None) -> Fault | None:
        with self._lock:
            for planned in self._planned:
                if planned.route is None or planned.route == route:
                    planned.times -= 1
                    if planned.times == 0:
                        self._planned.remove(planned)
                    return planned.fault
        return None

    def pending(self) -> list[tuple[str | None, Fault, int]]:
        with self._lock:
            return [(p.route, p.fault, p.times) for p in self._planned]

    def clear(self) -> None:
        with self._lock:
            self._planned.clear()


# --- the server ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Route:
    method: str
    pattern: str
    regex: re.Pattern[str]
    handler: Handler

    @property
    def key(self) -> str:
        return f"{self.method} {self.pattern}"


def _compile(pattern: str) -> re.Pattern[str]:
    """``/api/v1/statuses/{id}`` (or ``:id``) as a regex with named groups."""
    parts = re.split(r"(\{\w+\}|:\w+)", pattern)
    regex = "".join(
        f"(?P<{p.strip('{}:')}>[^/]+)" if p.startswith(("{", ":")) else re.escape(p) for p in parts
    )
    return re.compile(f"^{regex}$")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeServer) -> None:
        self.fake = fake
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _RequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return  # the client went away (it timed out, or a fault closed the socket)
        self.fake.server_errors.append(repr(exc))
        super().handle_error(request, client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stalls
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.fake.verbose:
            super().log_message(format, *args)

    def handle_one_request(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(65537)
        except OSError:
            self.close_connection = True
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        if not self.parse_request():
            return
        received_at = datetime.now(UTC)
        body = self._read_body()
        split = urllib.parse.urlsplit(self.path)
        request = FakeRequest(
            method=self.command,
            path=urllib.parse.unquote(split.path),
            query=urllib.parse.parse_qs(split.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            received_at=received_at,
        )
        self.server.fake._dispatch(request, self)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    # what the dispatcher does with the connection

    def send(self, response: FakeResponse, *, head_only: bool = False) -> None:
        self.send_response(response.status)
        headers = {"Content-Length": str(len(response.body)), **response.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if response.body and not head_only:
            self.wfile.write(response.body)

    def drop(self, *, rst: bool) -> None:
        """Close without an answer: FIN (lost response) or RST (connection reset)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            if rst:
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
            self.rfile.close()  # the socket's file descriptor closes with its last reference
            self.connection.close()


class FakeServer:
    """A fake platform on 127.0.0.1: routes, request log, faults, validation."""

    name = "fake"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        verbose: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        #: seconds every answer waits (benchmarks)
        self.latency = latency
        self.verbose = verbose
        #: guards the fake's state; subclasses take it in their handlers
        self.lock = threading.RLock()
        self.faults = FaultQueue()
        self.validation_errors: list[ValidationFailure] = []
        #: exceptions raised by the fake itself (a bug in the fake, not in the client)
        self.server_errors: list[str] = []
        self._requests: list[FakeRequest] = []
        self._routes: list[_Route] = []
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # lifecycle

    def start(self) -> Self:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _HTTPServer((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{self.name}-fake:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection (new ones are refused)."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with server.connections_lock:
            open_connections = list(server.connections)
        for connection in open_connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @contextlib.contextmanager
    def refusing(self) -> Iterator[None]:
        """Inside the block, connections are refused; then it listens again on the same port."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    # routes, faults, log

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append(_Route(method.upper(), pattern, _compile(pattern), handler))

    @property
    def routes(self) -> list[str]:
        return [r.key for r in self._routes]

    def inject(self, fault: Fault, *, route: str | None = None, times: int = 1) -> None:
        """Let the next ``times`` requests to ``route`` (any request: None) fail with ``fault``."""
        if route is not None and route not in self.routes:
            raise ValueError(f"{self.name} fake has no route {route!r}; known: {self.routes}")
        self.faults.add(fault, route=route, times=times)

    @property
    def requests(self) -> list[FakeRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self.lock:
            return list(self._requests)

    def requests_to(self, route: str) -> list[FakeRequest]:
        """The requests that matched ``route`` (``"POST /api/v1/statuses"``)."""
        return [r for r in self.requests if r.route == route]

    def clear_log(self) -> None:
        with self.lock:
            self._requests.clear()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Poll the fake's state until ``predicate()`` holds; False after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    # hooks for subclasses

    def validate(self, request: FakeRequest) -> list[str]:
        """Why the platform's contract refuses ``request`` (empty: it is valid)."""
        return []

    def invalid(self, request: FakeRequest, errors: list[str]) -> FakeResponse:
        """The answer to a request that failed validation."""
        return json_response({"error": "; ".join(errors)}, 422)

    def before(self, request: FakeRequest) -> FakeResponse | None:
        """Runs before the route's handler (authentication, rate limits); an answer ends it."""
        return None

    def decorate(self, request: FakeRequest, response: FakeResponse) -> None:
        """Adjust every answer the platform itself gives (e.g. rate-limit headers)."""

    def check_response(self, request: FakeRequest, response: FakeResponse) -> list[str]:
        """Why the fake's own answer breaks the platform's contract (a bug in the fake)."""
        return []

    def not_found(self, request: FakeRequest) -> FakeResponse:
        return json_response({"error": "Not found"}, 404)

    def snapshot(self) -> dict[str, Any]:
        """The fake's state as JSON, for the control API."""
        return {}

    # one request

    def _match(self, request: FakeRequest) -> _Route | None:
        for route in self._routes:
            if route.method != request.method:
                continue
            found = route.regex.match(request.path)
            if found:
                request.route = route.key
                request.params = found.groupdict()
                return route
        return None

    def _dispatch(self, request: FakeRequest, conn: _RequestHandler) -> None:
        if request.path.startswith(CONTROL_PREFIX):
            conn.send(self._control(request))
            return
        route = self._match(request)
        with self.lock:
            self._requests.append(request)
        if self.latency:
            self._stopping.wait(self.latency)
        errors = self.validate(request)
        if route is None:
            errors = [*errors, f"the {self.name} fake serves no route for this request"]
        if errors:
            with self.lock:
                self.validation_errors.append(
                    ValidationFailure(request.method, request.path, tuple(errors))
                )
        fault = self.faults.take(request.route)
        if fault is not None:
            request.fault = fault.label
        if fault is not None and fault.kind == "reset":
            conn.drop(rst=True)
            return
        if fault is not None and fault.kind == "status":
            body = json.dumps(fault.body).encode()
            headers = {"Content-Type": "application/json; charset=utf-8", **dict(fault.headers)}
            self._send(conn, request, FakeResponse(fault.status, body, headers))
            return
        if fault is not None and fault.kind == "delay":
            if self._stopping.wait(fault.seconds):
                conn.drop(rst=False)
                return
            if not fault.apply:
                self._send(conn, request, json_response({"error": "Service Unavailable"}, 503))
                return
        if route is None:
            response = self.not_found(request)
        elif errors:
            response = self.invalid(request, errors)
        else:
            response = self._process(route, request)
        if fault is not None and fault.kind == "lose_response":
            conn.drop(rst=False)
            return
        self._send(conn, request, response)

    def _process(self, route: _Route, request: FakeRequest) -> FakeResponse:
        try:
            response = self.before(request) or route.handler(request)
            self.decorate(request, response)
            problems = self.check_response(request, response)
        except Exception as exc:  # noqa: BLE001 - a bug in the fake becomes a visible 500
            with self.lock:
                self.server_errors.append(f"{request.method} {request.path}: {exc!r}")
            return json_response({"error": f"fake crashed: {exc!r}"}, 500)
        if problems:
            with self.lock:
                self.server_errors.extend(
                    f"{request.method} {request.path} -> {response.status}: {p}" for p in problems
                )
        return response

    def _send(self, conn: _RequestHandler, request: FakeRequest, response: FakeResponse) -> None:
        request.status = response.status
        conn.send(response, head_only=request.method == "HEAD")

    # the control API (for fakes in another process)

    def _control(self, request: FakeRequest) -> FakeResponse:
        what = request.path.removeprefix(CONTROL_PREFIX).strip("/")
        if what == "requests" and request.method == "GET":
            return json_response([r.summary() for r in self.requests])
        if what == "validation_errors" and request.method == "GET":
            with self.lock:
                return json_response([str(v) for v in self.validation_errors])
        if what == "state" and request.method == "GET":
            with self.lock:
                return json_response(self.snapshot())
        if what == "faults" and request.method == "POST":
            spec = request.json()
            fault = fault_from_json(spec)
            try:
                self.inject(fault, route=spec.get("route"), times=int(spec.get("times", 1)))
            except ValueError as exc:
                return json_response({"error": str(exc)}, 400)
            return json_response({"ok": True})
        if what == "faults" and request.method == "DELETE":
            self.faults.clear()
            return json_response({"ok": True})
        return json_response({"error": f"no control endpoint {request.method} {what}"}, 404)


def fault_from_json(spec: Mapping[str, Any]) -> Fault:
    """``{"kind": "status", "status": 503}``, ``{"kind": "rate_limit", "retry_after": 2}``, …"""
    kind = spec["kind"]
    if kind == "status":
        return status(int(spec["status"]), spec.get("body"), spec.get("headers"))
    if kind == "rate_limit":
        return rate_limit(float(spec.get("retry_after", 1)))
    if kind == "delay":
        return delay(float(spec["seconds"]), apply=bool(spec.get("apply", False)))
    if kind == "lose_response":
        return lose_response()
    if kind == "reset":
        return reset()
    raise ValueError(f"unknown fault kind {kind!r}")


class RemoteFake:
    """Drives a fake running in another process through its control API."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def _call(self, method: str, what: str, data: Any = None) -> Any:
        body = json.dumps(data).encode() if data is not None else None
        request = urllib.request.Request(  # noqa: S310 - always http://127.0.0.1
            f"{self.url}{CONTROL_PREFIX}/{what}",
            data=body,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - see above
            return json.loads(answer.read())

    def inject(self, kind: str, *, route: str | None = None, times: int = 1, **args: Any) -> None:
        self._call("POST", "faults", {"kind": kind, "route": route, "times": times, **args})

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def requests(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "requests")
        return result

    def validation_errors(self) -> list[str]:
        result: list[str] = self._call("GET", "validation_errors")
        return result

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "state")
        return result


# --- running a fake as a process ----------------------------------------------------------------


def main(
    build: Callable[[argparse.Namespace], FakeServer],
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    argv: list[str] | None = None,
    describe: Callable[[FakeServer], dict[str, Any]] | None = None,
) -> int:
    """Run a fake until SIGTERM/SIGINT, printing ``{"url": …, …}`` as one JSON line first."""
    parser = argparse.ArgumentParser(description="Serve a fake platform on 127.0.0.1.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before every answer")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    fake = build(args)
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    with fake:
        line = {"url": fake.url, "port": fake.port, "pid": os.getpid()}
        if describe is not None:
            line.update(describe(fake))
        print(json.dumps(line), flush=True)
        done.wait()
    return 0
