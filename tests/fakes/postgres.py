"""A real PostgreSQL for tests: Debian's server binaries, a throwaway cluster per test session.

``initdb`` into a private folder, ``pg_ctl start`` on a free port on 127.0.0.1 (its Unix socket in
the same folder, never in /var/run), one fresh database per test (``CREATE DATABASE``), and
``pg_ctl stop -m immediate`` at the end of the session; the folder is removed. Durability does not
matter here, so fsync and synchronous commits are off.

PostgreSQL refuses to run as root, so when the tests run as root the cluster belongs to the
``postgres`` system user (the Debian package creates it; else ``nobody``), in a folder under the
system temporary directory that user can reach (pytest's ``tmp_path`` sits below a 0700 folder
owned by root), and every server command runs as that user (``Popen(user=...)``). As any other
user it runs as that user.

Without PostgreSQL (Debian package ``postgresql``: ``scripts/system-packages`` installs it) the
fixtures skip, and under ``CI=true`` the suite's hook turns that skip into a failure.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

#: Where Debian's ``postgresql-<version>`` package puts the server binaries.
DEBIAN_BINARIES = Path("/usr/lib/postgresql")
MISSING_REASON = (
    "PostgreSQL is not installed: the analytics store's tests run against a real PostgreSQL "
    "(Debian package postgresql: apt-get install postgresql, or run scripts/system-packages)"
)
SUPERUSER = "debtbot"
START_TIMEOUT_SECONDS = 30


def binaries() -> Path | None:
    """The newest installed server's ``bin`` folder (with ``initdb`` and ``pg_ctl``), or ``None``."""
    found = [
        path.parent
        for path in DEBIAN_BINARIES.glob("*/bin/initdb")
        if path.is_file() and (path.parent / "pg_ctl").is_file()
    ]

    def version(folder: Path) -> tuple[int, ...]:
        name = folder.parent.name
        return tuple(int(part) for part in name.split(".") if part.isdigit())

    return max(found, key=version) if found else None


def missing_reason() -> str | None:
    """Why no PostgreSQL can be started here, or ``None`` when it can."""
    return MISSING_REASON if binaries() is None else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run_as() -> pwd.struct_passwd | None:
    """The user the cluster runs as when we are root (``postgres``, else ``nobody``); ``None`` otherwise."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    pytest.skip("running as root and there is neither a 'postgres' nor a 'nobody' user to run PostgreSQL as")


class PostgresServer:
    """One throwaway PostgreSQL cluster; a context manager that starts and stops it."""

    host = "127.0.0.1"

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = free_port()
        self._user = _run_as()
        self.folder = Path(tempfile.mkdtemp(prefix="debtbot-postgres-"))
        self.data = self.folder / "data"
        self.socket_dir = self.folder / "run"
        self.log_file = self.folder / "postgres.log"
        self.socket_dir.mkdir()
        if self._user is not None:
            for path in (self.folder, self.socket_dir):
                os.chown(path, self._user.pw_uid, self._user.pw_gid)
        self._names = itertools.count(1)
        self.running = False

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        user = self._user
        result = subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.folder,
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            extra_groups=[] if user else None,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "TZ": "UTC"},
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{args[0]} failed ({result.returncode}): {result.stderr.strip()}\n{self.log_tail()}"
            )
        return result

    def start(self) -> None:
        """``initdb`` and ``pg_ctl start`` (waits until the server accepts connections)."""
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8",
                  "--no-sync", "--no-instructions")  # fmt: skip
        options = (
            f"-h {self.host} -p {self.port} -k {self.socket_dir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=50"
        )
        self._run("pg_ctl", "start", "-w", "-t", str(START_TIMEOUT_SECONDS), "-D", str(self.data),
                  "-l", str(self.log_file), "-o", options)  # fmt: skip
        self.running = True

    def stop(self) -> None:
        """Stop the server at once (``-m immediate``: nothing here needs a clean shutdown)."""
        if not self.running:
            return
        self.running = False
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._run("pg_ctl", "stop", "-w", "-m", "immediate", "-D", str(self.data), timeout=60)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL (psycopg2) of ``database`` over TCP on 127.0.0.1."""
        return f"postgresql+psycopg2://{SUPERUSER}@{self.host}:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database (``CREATE DATABASE``); its SQLAlchemy URL."""
        import psycopg2

        name = f"test_{next(self._names)}"
        connection = psycopg2.connect(host=self.host, port=self.port, user=SUPERUSER, dbname="postgres")
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        return self.url(name)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no PostgreSQL log)"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A started PostgreSQL for the whole session; skips (fails under CI) without PostgreSQL."""
    bin_dir = binaries()
    if bin_dir is None:
        pytest.skip(MISSING_REASON)
    with PostgresServer(bin_dir) as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of a new, empty PostgreSQL database for this test."""
    return postgres_server.create_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def analytics_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind the analytics store supports: SQLite (a file in
    ``tmp_path``) and PostgreSQL (a new database on the session's server)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'analytics.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database()
