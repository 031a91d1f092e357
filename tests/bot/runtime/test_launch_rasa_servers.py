"""``rasa.processes`` / ``rasa.urls``: what ``debtbot run`` starts for several Rasa servers, and
what the configuration accepts (no Rasa is started here)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
import redis

from bot.config import RasaServer, load_config
from bot.errors import ConfigError
from bot.runtime import launch
from bot.runtime.launch import (
    actions_ready,
    actions_specs,
    busy_ports,
    child_env,
    process_specs,
    rasa_ready,
    rasa_specs,
)
from bot.runtime.run import _rasa_lines
from bot.runtime.services import build_rasa
from bot.runtime.supervisor import ManagedProcess
from dialogue.rasa_client import RasaUnavailable
from dialogue.rasa_pool import RasaPool
from tests.conftest import TEST_SECRETS, ConfigFactory, free_port, wait_for, write_config


def _argv_port(argv: Sequence[str]) -> str:
    args = list(argv)
    return args[args.index("--port") + 1]


def test_n_processes_start_n_rasa_servers_each_with_its_own_action_server(
    make_config: ConfigFactory, tmp_path: Path
) -> None:
    config = make_config(rasa={"processes": 3})
    specs = {spec.name: spec for spec in process_specs(config, tmp_path / "model.tar.gz")}
    assert [name for name in specs if name.startswith(("rasa", "actions"))] == [
        "rasa1", "rasa2", "rasa3", "actions1", "actions2", "actions3",
    ]  # fmt: skip
    assert [_argv_port(specs[f"rasa{n}"].argv) for n in (1, 2, 3)] == ["5005", "5006", "5007"]
    # Each Rasa server's endpoints.yml reads its own action server's URL.
    assert [specs[f"rasa{n}"].env["DEBTBOT_ACTIONS_URL"] for n in (1, 2, 3)] == [
        "http://127.0.0.1:5055", "http://127.0.0.1:5056", "http://127.0.0.1:5057",
    ]  # fmt: skip
    # Each action server's configuration puts it on its own port.
    second = specs["actions2"].env
    child = load_config(
        config.source, {**TEST_SECRETS, **{k: v for k, v in second.items() if k.startswith("DEBTBOT__")}}
    )
    assert child.rasa.actions_url == "http://127.0.0.1:5056"


def test_one_process_is_started_as_before(make_config: ConfigFactory, tmp_path: Path) -> None:
    config = make_config()
    specs = {spec.name: spec for spec in process_specs(config, tmp_path / "model.tar.gz")}
    assert "rasa" in specs and "actions" in specs and "rasa1" not in specs
    assert _argv_port(specs["rasa"].argv) == "5005"
    assert specs["rasa"].env["DEBTBOT_ACTIONS_URL"] == config.rasa.actions_url


def test_servers_run_elsewhere_are_not_started_but_all_are_waited_for(
    make_config: ConfigFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(rasa={"urls": ["http://10.0.0.5:5005", "http://10.0.0.6:5005"],
                               "actions_urls": ["http://10.0.0.5:5055", "http://10.0.0.6:5055"]})  # fmt: skip
    names = [spec.name for spec in process_specs(config, tmp_path / "model.tar.gz")]
    assert not [name for name in names if name.startswith(("rasa", "actions"))]
    asked: list[str] = []
    answering = {"http://10.0.0.5:5005/status", "http://10.0.0.5:5055/health"}

    def http_ok(url: str, params: dict[str, str] | None = None) -> bool:
        asked.append(url)
        return url in answering

    monkeypatch.setattr(launch, "_http_ok", http_ok)
    assert not rasa_ready(config) and not actions_ready(config)
    answering |= {"http://10.0.0.6:5005/status", "http://10.0.0.6:5055/health"}
    assert rasa_ready(config) and actions_ready(config)
    assert "http://10.0.0.6:5005/status" in asked
    monkeypatch.setattr(launch, "port_in_use", lambda host, port: True)
    assert [line.split(":")[0] for line in busy_ports(config)] == ["server.port"]


def test_a_busy_port_of_any_server_is_named_before_starting(
    make_config: ConfigFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(rasa={"processes": 2})
    monkeypatch.setattr(launch, "port_in_use", lambda host, port: port in (5006, 5056))
    assert busy_ports(config) == [
        "rasa.url (server 2 of rasa.processes: 2): port 5006 is already in use",
        "rasa.actions_url (server 2 of rasa.processes: 2): port 5056 is already in use",
    ]


def test_the_banner_shows_every_server(make_config: ConfigFactory) -> None:
    lines = _rasa_lines(make_config(rasa={"processes": 2}))
    assert "2 servers" in lines[0]
    assert "http://127.0.0.1:5006, actions http://127.0.0.1:5056" in lines[2]
    assert _rasa_lines(make_config())[0].startswith("  rasa       http://127.0.0.1:5005")


# The configuration


def test_the_servers_follow_the_ports_of_url_and_actions_url(make_config: ConfigFactory) -> None:
    rasa = make_config(rasa={"processes": 2, "url": "http://127.0.0.1:6005",
                             "actions_url": "http://127.0.0.1:6055"}).rasa  # fmt: skip
    assert rasa.servers == [
        RasaServer("http://127.0.0.1:6005", "http://127.0.0.1:6055"),
        RasaServer("http://127.0.0.1:6006", "http://127.0.0.1:6056"),
    ]
    assert rasa.server_urls == ["http://127.0.0.1:6005", "http://127.0.0.1:6006"]
    assert rasa.started_here


def test_with_a_list_of_servers_url_and_actions_url_are_the_first(make_config: ConfigFactory) -> None:
    rasa = make_config(rasa={"urls": ["http://a.internal:5005/", "http://b.internal:5005"],
                             "actions_urls": ["http://a.internal:5055", "http://b.internal:5055"]}).rasa  # fmt: skip
    assert (rasa.url, rasa.actions_url) == ("http://a.internal:5005", "http://a.internal:5055")
    assert rasa.server_urls == ["http://a.internal:5005", "http://b.internal:5005"]
    assert not rasa.started_here


@pytest.mark.parametrize(
    ("settings", "key", "words"),
    [
        ({"processes": 2, "urls": ["http://a:1", "http://b:1"]}, "rasa.urls", "not both"),
        ({"urls": ["http://a:1", "http://a:1"]}, "rasa.urls", "twice"),
        ({"urls": ["http://a:1", "ftp://b:1"]}, "rasa.urls.1", "http://"),
        ({"url": "http://c:1", "urls": ["http://a:1", "http://b:1"]}, "rasa.urls", "rasa.url is the first"),
        (
            {"urls": ["http://a:1", "http://b:1"], "actions_urls": ["http://a:2"]},
            "rasa.actions_urls",
            "same order",
        ),
        ({"processes": 0}, "rasa.processes", ""),
        ({"processes": 3, "url": "http://127.0.0.1:5054"}, "rasa.processes", "overlap"),
        ({"processes": 2, "url": "http://127.0.0.1:65535"}, "rasa.processes", "65535"),
        ({"repin_after_seconds": 60}, "rasa.repin_after_seconds", ""),
        ({"processes": 2, "timeout_seconds": 120}, "rasa.repin_after_seconds", "twice rasa.timeout_seconds"),
    ],
)
def test_a_wrong_rasa_server_setting_is_named(
    tmp_path: Path, settings: dict[str, object], key: str, words: str
) -> None:
    path = write_config(tmp_path, {"rasa": settings})
    with pytest.raises(ConfigError) as caught:
        load_config(path, TEST_SECRETS)
    message = str(caught.value)
    assert f"{key}:" in message and words in message


# Two real Rasa servers (slow: about two minutes on two cores)


def _free_run(count: int) -> int:
    """A port such that it and the next ``count - 1`` are free."""
    for _ in range(50):
        base = free_port()
        if base + count <= 65535 and not any(launch.port_in_use("127.0.0.1", base + n) for n in range(count)):
            return base
    raise AssertionError("no run of free ports")


@pytest.mark.e2e
def test_two_rasa_servers_each_answer_their_conversations_and_a_stopped_ones_wait(
    tmp_path: Path, redis_url: str, redis_client: redis.Redis[bytes], trained_model: Path
) -> None:
    rasa_port, actions_port = _free_run(2), _free_run(2)
    path = write_config(tmp_path, {"rasa": {"processes": 2, "url": f"http://127.0.0.1:{rasa_port}",
                                            "actions_url": f"http://127.0.0.1:{actions_port}"}})  # fmt: skip
    config = load_config(path, {"REDIS_URL": redis_url, **TEST_SECRETS})
    env = child_env(config)
    log = (tmp_path / "rasa.log").open("a", encoding="utf-8")
    processes = [
        ManagedProcess(spec, log)
        for spec in actions_specs(config, env) + rasa_specs(config, env, trained_model)
    ]
    for process in processes:
        process.start()
    try:
        wait_for(
            lambda: actions_ready(config) and rasa_ready(config),
            timeout=400,
            interval=1,
            what="2 Rasa servers",
        )
        pool = build_rasa(config, redis_client)
        assert isinstance(pool, RasaPool)
        first, second = pool.urls
        ids = [f"e2e-pool-{n}" for n in range(40)]
        on_first = [cid for cid in ids if pool.server_for(cid) == first][:2]
        on_second = [cid for cid in ids if pool.server_for(cid) == second][:2]

        def hello(cid: str) -> list[str]:
            metadata = {"channel": "canary", "language": "en"}
            replies = pool.send_message(
                cid, "hello", channel="canary", metadata=metadata, message_id=f"{cid}:1"
            )
            return [reply.text for reply in replies]

        for cid in (on_first[0], on_second[0]):  # each server runs its turns with its own actions
            assert hello(cid), cid
        # The second server stops: its conversation that just talked waits for it...
        [rasa2] = [process for process in processes if process.spec.name == "rasa2"]
        rasa2.stop()
        with pytest.raises(RasaUnavailable):
            hello(on_second[0])
        with pytest.raises(RasaUnavailable, match="waits"):
            hello(on_second[0])
        # ...while one that had not talked lately is answered by the first (shared trackers).
        assert hello(on_second[1])
        assert pool.tracker(on_second[1])["sender_id"] == on_second[1]
    except AssertionError:
        log.flush()
        raise AssertionError(
            "failed; Rasa's output:\n" + (tmp_path / "rasa.log").read_text()[-4000:]
        ) from None
    finally:
        for process in processes:
            process.stop()
        log.close()
