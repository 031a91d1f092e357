"""What both provider stand-ins share: a threaded HTTP server on 127.0.0.1 that hands each
request to the stand-in's ``_serve`` and writes its JSON answer."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Protocol, TypeVar

S = TypeVar("S", bound="StandIn")


class Reply(Protocol):
    """A stand-in's answer: a status, a JSON body (``None`` for none), maybe a delay."""

    @property
    def status(self) -> int: ...

    @property
    def body(self) -> Any: ...


class StandIn:
    """Lifecycle of a local provider stand-in; subclasses implement :meth:`_serve`."""

    #: The server thread's name.
    name = "stand-in"
    #: How often the server looks for shutdown (seconds).
    poll_interval = 0.05

    def __init__(self) -> None:
        self._closing = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def _serve(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        raise NotImplementedError

    def _on_close(self) -> None:
        """Wake whatever waits inside a request (long polls, stalls)."""

    def start(self: S) -> S:
        """Listen on a free port of 127.0.0.1 (idempotent)."""
        if self._server is None:
            self._closing.clear()
            self._server = _Server(("127.0.0.1", 0), self)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": self.poll_interval},  # shutdown() waits up to one interval
                name=self.name,
                daemon=True,
            )
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving; requests waiting inside are cut short."""
        self._closing.set()
        self._on_close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self: S) -> S:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], stand_in: StandIn) -> None:
        super().__init__(address, _Handler)
        self.stand_in = stand_in


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    server: _Server

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        stand_in = self.server.stand_in
        reply = stand_in._serve(self.command, self.path, dict(self.headers.items()), self._read_body())
        delay = float(getattr(reply, "delay", 0.0))
        if delay > 0:
            stand_in._closing.wait(delay)
        payload = b"" if reply.body is None else json.dumps(reply.body).encode("utf-8")
        try:
            self.send_response(reply.status)
            if reply.body is not None:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the client gave up (a timeout)
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: request lines and bodies carry phone numbers, tokens, chat ids and texts."""
