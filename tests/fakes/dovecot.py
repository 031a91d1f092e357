"""A real IMAP server for tests: Debian's dovecot, started with a generated configuration.

Everything dovecot needs (configuration, base_dir, state, log, users file, maildirs, the
self-signed certificate) lives in one private folder; the server listens on 127.0.0.1 only, on
free ports: a plain listener (which also offers STARTTLS) and an implicit-TLS listener. Tests
"deliver mail" with :meth:`DovecotServer.append` (IMAP APPEND) and look at the result with
:meth:`DovecotServer.flags_of_all`.

Dovecot refuses mail access as UID 0, so when the tests run as root the whole server runs as
``nobody`` (``Popen(user=...)``) from a folder under the system temporary directory that
``nobody`` can reach (pytest's ``tmp_path`` sits below a 0700 folder owned by root). As any
other user it runs as that user from ``tmp_path``. Either way it is "rootless" dovecot: the
internal and login users are the running user and nothing is chrooted.

The server is stopped by signalling its whole process group (it runs in a session of its own),
which takes milliseconds where dovecot's own shutdown waits a second; nothing is left running.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from imapclient import IMAPClient

DOVECOT = Path("/usr/sbin/dovecot")
OPENSSL = "openssl"
MISSING_REASON = (
    f"{DOVECOT} is not installed: the IMAP poller tests need a real IMAP server "
    "(Debian package dovecot-imapd: apt-get install dovecot-imapd)"
)

#: The test mailbox's login: an email address, so tests can check it never reaches the logs.
USERNAME = "replies@northwind.example.test"
PASSWORD = "imap-test-password"

#: The capabilities dovecot 2.3 announces after login, minus IDLE (``imap_capability`` replaces
#: the whole list; 2.3 cannot remove a single capability).
CAPABILITIES_WITHOUT_IDLE = (
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE SORT SORT=DISPLAY THREAD=REFERENCES "
    "THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN "
    "NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES "
    "WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW STATUS=SIZE "
    "SAVEDATE LITERAL+ NOTIFY"
)

START_TIMEOUT_SECONDS = 10.0
STOP_GRACE_SECONDS = 0.3
_APPENDUID = re.compile(rb"\[APPENDUID \d+ (\d+)\]")


def missing_reason() -> str | None:
    """Why no dovecot can be started here, or ``None`` when it can."""
    if not DOVECOT.is_file():
        return MISSING_REASON
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run_as() -> pwd.struct_passwd:
    """The user dovecot runs as: ourselves, or ``nobody`` when we are root."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("running as root and there is no 'nobody' user to run dovecot as")


def _running_in_group(pgid: int) -> bool:
    """Whether a process of group ``pgid`` is still running (zombies do not count)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid pgrp ...: split after the comm, which may contain spaces.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


class DovecotServer:
    """One dovecot instance with one test user; a context manager that starts and stops it."""

    host = "127.0.0.1"

    def __init__(
        self, folder: Path, *, idle: bool = True, certificate: tuple[Path, Path] | None = None
    ) -> None:
        """Prepare (not start) a server in ``folder``; ``idle=False`` leaves IDLE out of its capabilities.

        ``certificate`` is a (cert, key) pair of PEM files; with it the server also speaks TLS
        (STARTTLS on :attr:`port`, implicit TLS on :attr:`ssl_port`).
        """
        self.username = USERNAME
        self.password = PASSWORD
        self.idle = idle
        self.port = free_port()
        self.ssl_port = free_port() if certificate else 0
        self.cert_file: Path | None = None
        self._user = _run_as()
        self._own_folder: Path | None = None
        self._requested_folder = folder
        if os.geteuid() == 0:
            # Below pytest's root-only tmp_path ``nobody`` cannot reach anything.
            self._own_folder = Path(tempfile.mkdtemp(prefix="debtbot-dovecot-"))
            folder = self._own_folder
        self.folder = folder
        self.log_file = folder / "dovecot.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._write_files(certificate)

    # -- files -------------------------------------------------------------------------------

    def _write_files(self, certificate: tuple[Path, Path] | None) -> None:
        root = self.folder
        for sub in ("run", "state", "mail"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "users").write_text(f"{self.username}:{{PLAIN}}{self.password}\n")
        tls = "ssl = no"
        if certificate is not None:
            shutil.copyfile(certificate[0], root / "cert.pem")
            shutil.copyfile(certificate[1], root / "key.pem")
            self.cert_file = root / "cert.pem"
            tls = f"ssl = yes\nssl_cert = <{root}/cert.pem\nssl_key = <{root}/key.pem\nssl_min_protocol = TLSv1.2"
        user = self._user
        group = grp.getgrgid(user.pw_gid).gr_name
        capability = "" if self.idle else f"imap_capability = {CAPABILITIES_WITHOUT_IDLE}"
        (root / "dovecot.conf").write_text(
            f"""\
# Generated by tests/fakes/dovecot.py: a throwaway, rootless, loopback-only IMAP server.
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
{tls}
disable_plaintext_auth = no
# A refused login answers at once instead of after dovecot's 2 s penalty.
auth_failure_delay = 0
auth_mechanisms = plain login
default_internal_user = {user.pw_name}
default_internal_group = {group}
default_login_user = {user.pw_name}
first_valid_uid = {user.pw_uid}
mail_location = maildir:{root}/mail/%u
# Tests append hundreds of messages; durability across power loss does not matter here.
mail_fsync = never
# IDLE learns of new mail through inotify; where a busy machine has run out of inotify
# instances dovecot falls back to looking every 30 s, longer than any test waits.
mailbox_idle_check_interval = 1 secs
{capability}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={user.pw_uid} gid={user.pw_gid} home={root}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.ssl_port}
  }}
}}
service anvil {{
  chroot =
}}
"""
        )
        if os.geteuid() == 0:
            for path in [root, *root.rglob("*")]:
                os.chown(path, user.pw_uid, user.pw_gid)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start dovecot and wait until the test user can log in."""
        if self._process is not None:
            raise RuntimeError("dovecot is already running")
        as_root = os.geteuid() == 0
        self._process = subprocess.Popen(
            [str(DOVECOT), "-F", "-c", str(self.folder / "dovecot.conf")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            # A session of its own: stop() signals the master and all its children at once.
            start_new_session=True,
            user=self._user.pw_uid if as_root else None,
            group=self._user.pw_gid if as_root else None,
            extra_groups=[] if as_root else None,
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            if self._process.poll() is not None:
                stderr = self._process.stderr.read().decode(errors="replace") if self._process.stderr else ""
                self._process = None
                raise RuntimeError(f"dovecot exited at start: {stderr.strip()}\n{self.log_tail()}")
            try:
                with self.client():
                    return
            except (OSError, IMAPClient.Error):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"dovecot did not accept a login in time\n{self.log_tail()}") from None
                time.sleep(0.02)

    def stop(self, *, graceful: bool = True) -> None:
        """Stop dovecot (every process of it); open connections are cut.

        ``graceful=False`` kills it outright: clients get no BYE, their connections just end
        (what a crashed server or a dropped network looks like).
        """
        process, self._process = self._process, None
        if process is None:
            return
        pgid = process.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM if graceful else signal.SIGKILL)
        try:
            # Without clients the master is gone in milliseconds; with one it waits a second.
            process.wait(STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            process.wait(5)
        if process.stderr:
            process.stderr.close()
        # The children got the signal too; wait until none is left running (their zombies are
        # reaped by init in its own time and hold no port or file).
        deadline = time.monotonic() + 5
        while _running_in_group(pgid):
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
                break
            time.sleep(0.01)

    def restart(self, *, graceful: bool = True) -> None:
        """Stop and start again on the same ports with the same mail (connections are cut)."""
        self.stop(graceful=graceful)
        self.start()

    def close(self) -> None:
        """Stop the server and remove the folder this object created itself (root only).

        The log is kept: copied into the folder the caller gave (pytest's ``tmp_path``).
        """
        self.stop()
        if self._own_folder is not None:
            with contextlib.suppress(OSError):
                self._requested_folder.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.log_file, self._requested_folder / "dovecot.log")
            shutil.rmtree(self._own_folder, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> DovecotServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def log_tail(self, lines: int = 30) -> str:
        """The end of dovecot's log, for failure messages."""
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no dovecot log)"

    # -- helpers for tests -------------------------------------------------------------------

    @contextlib.contextmanager
    def client(self) -> Iterator[IMAPClient]:
        """A logged-in plain IMAP connection of the test user (logged out afterwards)."""
        client = IMAPClient(self.host, port=self.port, ssl=False, timeout=5)
        try:
            client.login(self.username, self.password)
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def append(self, raw: bytes, folder: str = "INBOX", flags: Sequence[str] = ()) -> int:
        """Deliver ``raw`` into ``folder`` with IMAP APPEND; return its UID."""
        return self.append_many([raw], folder, flags)[0]

    def append_many(
        self, raws: Sequence[bytes], folder: str = "INBOX", flags: Sequence[str] = ()
    ) -> list[int]:
        """Deliver several messages over one connection, in order; return their UIDs."""
        uids = []
        with self.client() as client:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            for raw in raws:
                response = client.append(folder, raw, flags=tuple(flags))
                match = _APPENDUID.search(response)
                if match is None:
                    raise RuntimeError(f"APPEND gave no APPENDUID: {response!r}")
                uids.append(int(match.group(1)))
        return uids

    def flags_of_all(self, folder: str = "INBOX") -> dict[int, set[str]]:
        """Every message's flags by UID, read without changing anything (``\\Recent`` left out)."""
        with self.client() as client:
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            fetched = client.fetch(uids, ["FLAGS"]) if uids else {}
        return {
            uid: {flag.decode() for flag in data[b"FLAGS"] if flag != b"\\Recent"}
            for uid, data in fetched.items()
        }

    def set_flags(self, uids: Sequence[int], flags: Sequence[str], folder: str = "INBOX") -> None:
        """Add ``flags`` to the messages with ``uids`` (what a human reader's client would do)."""
        with self.client() as client:
            client.select_folder(folder)
            client.add_flags(list(uids), list(flags))

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's self-signed certificate."""
        if self.cert_file is None:
            raise RuntimeError("this server was started without TLS")
        return ssl.create_default_context(cafile=str(self.cert_file))


def make_certificate(folder: Path) -> tuple[Path, Path] | None:
    """A self-signed certificate for 127.0.0.1 and localhost (cert, key), or None without openssl."""
    if shutil.which(OPENSSL) is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-days", "2", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="session")
def imap_certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path] | None:
    """One self-signed certificate for every dovecot of the session (None without openssl)."""
    return make_certificate(tmp_path_factory.mktemp("imap-tls"))


def _serve(folder: Path, *, idle: bool, certificate: tuple[Path, Path] | None) -> Iterator[DovecotServer]:
    reason = missing_reason()
    if reason is not None:
        pytest.skip(reason)
    with DovecotServer(folder, idle=idle, certificate=certificate) as server:
        yield server


@pytest.fixture
def imap_server(tmp_path: Path, imap_certificate: tuple[Path, Path] | None) -> Iterator[DovecotServer]:
    """A started dovecot with IDLE (and TLS when openssl is present); skips without dovecot-imapd."""
    yield from _serve(tmp_path / "dovecot", idle=True, certificate=imap_certificate)


@pytest.fixture
def imap_server_without_idle(tmp_path: Path) -> Iterator[DovecotServer]:
    """A started dovecot that does not offer IDLE, for the polling fallback."""
    yield from _serve(tmp_path / "dovecot-no-idle", idle=False, certificate=None)
