"""A real SMTP server for the tests: aiosmtpd in a thread, keeping what it receives.

It speaks real SMTP (EHLO, STARTTLS, AUTH, MAIL/RCPT/DATA) so the product's smtplib code is
tested against a server, not a mock; ``fail_next`` makes it answer the next command of a
kind with a chosen reply code (a greylisting 451, a 550 "no such user").
"""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

USERNAME = "bot@northwind.example.com"
PASSWORD = "s3cret-smtp"


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    authenticated_as: str | None
    tls: bool

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self._server = server

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        failure = self._server._take_failure("RCPT")
        if failure:
            return failure
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        failure = self._server._take_failure("DATA")
        if failure:
            return failure
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        with self._server._lock:
            self._server.received.append(
                ReceivedMail(
                    mail_from=envelope.mail_from,
                    rcpt_tos=tuple(envelope.rcpt_tos),
                    data=bytes(envelope.original_content or envelope.content),
                    authenticated_as=login,
                    # STARTTLS sets session.ssl; implicit TLS shows on the transport.
                    tls=session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None,
                )
            )
            self._server._arrived.notify_all()
        return "250 Message accepted for delivery"


class SmtpServer:
    """One running aiosmtpd server on loopback."""

    def __init__(
        self,
        *,
        tls_context: ssl.SSLContext | None = None,
        require_auth: bool = False,
        implicit_tls: ssl.SSLContext | None = None,
    ) -> None:
        self.received: list[ReceivedMail] = []
        self._failures: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self.host = "127.0.0.1"
        self.port = _free_port()
        kwargs: dict[str, Any] = {}
        if tls_context is not None:
            kwargs.update(tls_context=tls_context, require_starttls=True)
        if require_auth:
            kwargs.update(authenticator=_authenticate, auth_required=True)
        if implicit_tls is not None:  # TLS from the first byte (port 465 style)
            kwargs.update(ssl_context=implicit_tls)
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port, **kwargs)

    def start(self) -> SmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def fail_next(self, stage: str, reply: str, times: int = 1) -> None:
        """Answer the next ``times`` ``stage`` commands ("RCPT" or "DATA") with ``reply``."""
        with self._lock:
            self._failures += [(stage, reply)] * times

    def _take_failure(self, stage: str) -> str | None:
        with self._lock:
            for index, (kind, reply) in enumerate(self._failures):
                if kind == stage:
                    del self._failures[index]
                    return reply
        return None

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMail]:
        """Wait until at least ``count`` mails arrived; return them all."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} mail(s), got {len(self.received)}")
                self._arrived.wait(left)
            return list(self.received)


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == USERNAME
        and auth_data.password.decode() == PASSWORD
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 made with openssl (for STARTTLS/implicit TLS tests)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def tls_contexts(folder: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context that trusts it) for a fresh self-signed certificate."""
    cert, key = self_signed_certificate(folder)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    return server_context, ssl.create_default_context(cafile=str(cert))


@contextmanager
def running(server: SmtpServer) -> Iterator[SmtpServer]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A plain SMTP server on loopback (no TLS, no auth), like a local relay."""
    with running(SmtpServer()) as server:
        yield server


@pytest.fixture
def smtp_tls_server(tmp_path: Path) -> Iterator[tuple[SmtpServer, ssl.SSLContext]]:
    """An SMTP server that requires STARTTLS and a login; with a client context that trusts it."""
    server_context, client_context = tls_contexts(tmp_path)
    with running(SmtpServer(tls_context=server_context, require_auth=True)) as server:
        yield server, client_context


@pytest.fixture
def smtp_implicit_tls_server(tmp_path: Path) -> Iterator[tuple[SmtpServer, ssl.SSLContext]]:
    """An SMTP server speaking TLS from the first byte; with a client context that trusts it."""
    server_context, client_context = tls_contexts(tmp_path)
    with running(SmtpServer(implicit_tls=server_context)) as server:
        yield server, client_context
