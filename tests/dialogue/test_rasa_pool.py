"""Several Rasa servers: each conversation on one server at a time, waiting when it is down."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import redis

from bot.runtime.services import build_rasa, build_services
from bot.store.addresses import address_key
from channels.base import InboundMessage, OutboundMessage
from dialogue.rasa_client import RasaActionFailed, RasaClient, RasaRejected, RasaUnavailable
from dialogue.rasa_pool import MemoryPins, RasaPool, RedisPins, ranking, server_for
from tests.conftest import ConfigFactory

SERVERS = [f"http://127.0.0.1:{5005 + n}" for n in range(4)]
REPIN = 180.0
PROBE = 5.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeServers:
    """Rasa servers behind one mock transport: each up, down (refuses connections) or failing
    (answers ``answer_status`` with ``answer_body``)."""

    down: set[str] = field(default_factory=set)
    answer_status: dict[str, int] = field(default_factory=dict)
    answer_body: dict[str, Any] = field(default_factory=dict)
    #: (server, path, conversation id or "") of every request that reached a server.
    seen: list[tuple[str, str, str]] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        server = f"{request.url.scheme}://{request.url.host}:{request.url.port}"
        if server in self.down:
            raise httpx.ConnectError("connection refused", request=request)
        path = request.url.path
        sender = ""
        if path.startswith("/conversations/"):
            sender = path.split("/")[2]
        elif request.content:
            sender = str(json.loads(request.content).get("sender", ""))
        self.seen.append((server, path, sender))
        if server in self.answer_status:
            return httpx.Response(self.answer_status[server], json=self.answer_body.get(server, {}))
        if path == "/status":
            return httpx.Response(200, json={"model_file": "20261205-model.tar.gz"})
        if path.endswith("/trigger_intent"):
            return httpx.Response(200, json={"messages": [{"text": f"opener from {server}"}]})
        if path.endswith("/tracker"):
            return httpx.Response(200, json={"sender_id": sender, "events": []})
        if path.endswith("/tracker/events"):
            return httpx.Response(200, json={})
        return httpx.Response(200, json=[{"text": f"answer from {server}"}])

    def servers_of(self, conversation_id: str) -> set[str]:
        return {server for server, path, sender in self.seen if sender == conversation_id}


def make_pool(fake: FakeServers, clock: Clock, servers: list[str] = SERVERS, pins: Any = None) -> RasaPool:
    return RasaPool(
        servers, "t", 5, pins=pins if pins is not None else MemoryPins(clock), repin_after=REPIN,
        probe_every=PROBE, clock=clock, transport=httpx.MockTransport(fake),
    )  # fmt: skip


def say(pool: RasaClient, conversation_id: str) -> str:
    [reply] = pool.send_message(conversation_id, "hello", channel="sms", metadata={})
    return reply.text.removeprefix("answer from ")


IDS = [f"sms:+1202555{n:04d}" for n in range(8000)]


# Where each conversation goes


def test_conversations_spread_evenly_over_the_servers() -> None:
    counts = Counter(server_for(SERVERS, cid) for cid in IDS)
    assert set(counts) == set(SERVERS)
    for server in SERVERS:
        assert abs(counts[server] - len(IDS) / 4) < 0.06 * len(IDS) / 4, counts


def test_a_conversation_always_goes_to_the_same_server_whatever_the_process_or_the_order() -> None:
    first = {cid: server_for(SERVERS, cid) for cid in IDS[:500]}
    assert all(server_for(list(reversed(SERVERS)), cid) == first[cid] for cid in IDS[:500])
    fake, clock = FakeServers(), Clock()
    other_process = make_pool(fake, clock)
    for cid in IDS[:50]:
        assert say(other_process, cid) == first[cid]
        assert say(other_process, cid) == first[cid]


def test_adding_a_server_moves_only_its_share_and_only_to_it() -> None:
    more = [*SERVERS, "http://127.0.0.1:5009"]
    moved = [cid for cid in IDS if server_for(SERVERS, cid) != server_for(more, cid)]
    assert abs(len(moved) / len(IDS) - 1 / 5) < 0.02
    assert all(server_for(more, cid) == more[-1] for cid in moved)


def test_every_call_about_a_conversation_goes_to_its_server() -> None:
    fake, clock = FakeServers(), Clock()
    pool = make_pool(fake, clock)
    for cid in IDS[:40]:
        pool.send_message(cid, "hi", channel="sms", metadata={}, message_id=f"m-{cid}")
        pool.trigger_intent(cid, "EXTERNAL_opener")
        pool.append_events(cid, [{"event": "pause"}])
        pool.tracker(cid)
        assert fake.servers_of(cid) == {server_for(SERVERS, cid)}
    assert {server for server, _, _ in fake.seen} == set(SERVERS)


# A server down


def test_a_down_servers_conversation_waits_then_moves_after_the_grace_period() -> None:
    fake, clock = FakeServers(), Clock()
    pool = make_pool(fake, clock)
    cid = IDS[0]
    home, second = ranking(SERVERS, cid)[:2]
    assert say(pool, cid) == home
    fake.down.add(home)
    clock.advance(1)
    with pytest.raises(RasaUnavailable):  # the call that finds it down (it may hold a turn now)
        say(pool, cid)
    last_call = clock.now
    reached = len(fake.seen)
    for wait in (1, 30, REPIN - 2):
        clock.now = last_call + wait
        with pytest.raises(RasaUnavailable, match="waits"):
            say(pool, cid)
    assert all(server == home for server, path, _ in fake.seen[reached:] if path != "/status")
    clock.now = last_call + REPIN + 0.5  # nothing of a turn that began then can still run
    assert say(pool, cid) == second
    # It stays there while it talks, even once its own server is back.
    fake.down.clear()
    clock.advance(PROBE)
    assert say(pool, cid) == second
    # Idle longer than the pin: back to its own server.
    clock.advance(REPIN + 1)
    assert say(pool, cid) == home


def test_a_conversation_with_no_recent_turn_goes_straight_to_the_next_server() -> None:
    fake, clock = FakeServers(), Clock()
    pool = make_pool(fake, clock)
    cid = IDS[1]
    home = server_for(SERVERS, cid)
    assert say(pool, cid) == home
    fake.down.add(home)
    with pytest.raises(RasaUnavailable):
        say(pool, cid)
    # A conversation of the same server that has not talked within the grace period holds no
    # turn anywhere: it need not wait.
    others = [c for c in IDS[3:] if server_for(SERVERS, c) == home][:5]
    for other in others:
        assert say(pool, other) == ranking(SERVERS, other)[1]
        assert fake.servers_of(other) == {ranking(SERVERS, other)[1]}


def test_a_down_server_is_asked_for_its_status_at_most_every_few_seconds_and_used_again_once_up() -> None:
    fake, clock = FakeServers(), Clock()
    pool = make_pool(fake, clock)
    home = server_for(SERVERS, IDS[0])
    fake.down.add(home)
    with pytest.raises(RasaUnavailable):
        say(pool, IDS[0])
    probes_before = len(fake.seen)
    for _ in range(20):  # busy conversations of that server: no request reaches it meanwhile
        with pytest.raises(RasaUnavailable):
            say(pool, IDS[0])
    assert len(fake.seen) == probes_before
    fake.down.clear()
    clock.advance(PROBE - 0.1)
    with pytest.raises(RasaUnavailable):
        say(pool, IDS[0])
    clock.advance(0.1)
    assert say(pool, IDS[0]) == home
    assert (home, "/status", "") in fake.seen


def test_every_server_down_means_wait() -> None:
    fake, clock = FakeServers(down=set(SERVERS)), Clock()
    pool = make_pool(fake, clock)
    errors = []
    for cid in IDS[:5]:  # each call finds one more server down (a server not tried is up)
        with pytest.raises(RasaUnavailable) as caught:
            say(pool, cid)
        errors.append(str(caught.value))
    assert errors[:4] == ["Rasa server unreachable: ConnectError"] * 4
    assert "no Rasa server answers" in errors[4]
    clock.advance(REPIN * 3)  # the pins lapsed; the status probes fail: still nothing to go to
    with pytest.raises(RasaUnavailable, match="no Rasa server answers"):
        say(pool, IDS[0])
    assert fake.seen == []


def test_two_processes_that_disagree_on_a_server_never_split_a_conversation(
    redis_client: redis.Redis[bytes],
) -> None:
    fake, clock = FakeServers(), Clock()
    pins = RedisPins(redis_client, "test")
    worker = make_pool(fake, clock, pins=pins)
    desk = make_pool(fake, clock, pins=pins)
    cid = IDS[0]
    home = server_for(SERVERS, cid)
    assert say(worker, cid) == home
    # The desk's process once saw the server fail (it thinks it down); the worker's does not.
    fake.down.add(home)
    with pytest.raises(RasaUnavailable):
        desk.tracker(IDS[0])
    fake.down.clear()
    assert say(worker, cid) == home  # the pin is refreshed by the worker's turn
    with pytest.raises(RasaUnavailable, match="waits"):
        desk.append_events(cid, [{"event": "pause"}])  # not the next server: it waits
    assert fake.servers_of(cid) == {home}
    assert redis_client.pttl(pins.key(cid)) > (REPIN - 5) * 1000
    assert cid.encode() not in b"".join(redis_client.keys("*"))  # no phone number in a key name


def test_an_answer_that_is_an_error_is_still_an_answer_from_a_server_that_is_up() -> None:
    fake, clock = FakeServers(), Clock()
    pool = make_pool(fake, clock)
    cid = IDS[0]
    home = server_for(SERVERS, cid)
    fake.answer_status[home] = 500
    fake.answer_body[home] = {"error": "action_failed", "actions": ["action_create_plan"]}
    with pytest.raises(RasaActionFailed):
        say(pool, cid)
    fake.answer_status[home] = 400
    with pytest.raises(RasaRejected):
        say(pool, cid)
    del fake.answer_status[home]
    assert say(pool, cid) == home  # no wait, no probe: it never was down
    assert all(path != "/status" for _, path, _ in fake.seen)


def test_the_status_of_the_pool_is_every_servers() -> None:
    fake, clock = FakeServers(down={SERVERS[1]}), Clock()
    status = make_pool(fake, clock).status()
    assert status["model_file"] == "20261205-model.tar.gz"
    assert "error" in status["servers"][SERVERS[1]] and len(status["servers"]) == 4


def test_memory_pins_expire_and_are_kept_only_for_usable_servers() -> None:
    clock = Clock()
    pins = MemoryPins(clock)
    assert pins.pin("c", ["a", "b"], 10) == ("a", True)
    assert pins.pin("c", ["b", "a"], 10) == ("a", True)  # pinned: the preference no longer matters
    assert pins.pin("c", ["b"], 10) == ("a", False)
    clock.advance(10)
    assert pins.pin("c", ["b"], 10) == ("b", True)
    assert pins.pin("d", [], 10) == (None, False)


# From the configuration and the worker


def test_one_server_is_the_plain_client_and_several_are_a_pool(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes]
) -> None:
    single = build_services(make_config(), redis_client).rasa
    assert type(single) is RasaClient
    pool = build_services(make_config(rasa={"processes": 3}), redis_client).rasa
    assert isinstance(pool, RasaPool)
    assert pool.urls == ("http://127.0.0.1:5005", "http://127.0.0.1:5006", "http://127.0.0.1:5007")
    config = make_config(rasa={"urls": ["http://10.0.0.5:5005", "http://10.0.0.6:5005"]})
    elsewhere = build_rasa(config, redis_client, timeout=3)
    assert isinstance(elsewhere, RasaPool) and elsewhere.urls == (
        "http://10.0.0.5:5005",
        "http://10.0.0.6:5005",
    )


def test_the_worker_keeps_a_message_whose_server_is_down_and_answers_it_from_the_next_one_later(
    make_config: ConfigFactory, redis_client: redis.Redis[bytes]
) -> None:
    services = build_services(make_config(rasa={"processes": 2}), redis_client)
    fake, clock = FakeServers(), Clock()
    servers = ["http://127.0.0.1:5005", "http://127.0.0.1:5006"]
    pool = make_pool(fake, clock, servers=servers)  # pins on the test's clock (RedisPins: real time)
    handler = services.inbound_handler(rasa=pool)
    key = address_key("telegram", "42")

    def hear(n: int) -> Any:
        message = InboundMessage(channel="telegram", external_id=str(n), sender="42", text=f"hello {n}")
        assert services.intake.accept(message)
        return services.inbound.drain(key, handler)

    assert hear(1).handled == 1
    [(home, _, cid)] = [seen for seen in fake.seen if seen[1].startswith("/webhooks")]
    other = next(server for server in servers if server != home)
    fake.down.add(home)
    clock.advance(1)
    assert hear(2).retry_in is not None  # kept, to be tried again
    clock.advance(60)
    assert services.inbound.drain(key, handler).retry_in is not None  # still waits for its server
    assert fake.servers_of(cid) == {home}
    clock.advance(REPIN)
    assert services.inbound.drain(key, handler).handled == 1
    assert fake.servers_of(cid) == {home, other}
    texts = [OutboundMessage.from_json(e.payload).text for e in services.outbound.unhandled(key)]
    assert texts == [f"answer from {home}", f"answer from {other}"]  # each message answered once


def test_a_pin_in_redis_lapses_after_its_time_and_is_then_taken_afresh(
    redis_client: redis.Redis[bytes],
) -> None:
    pins = RedisPins(redis_client, "test")
    assert pins.pin("c", ["a", "b"], 0.3) == ("a", True)
    assert pins.pin("c", ["b"], 0.3) == ("a", False)  # pinned to a server this process thinks down
    assert pins.pin("d", [], 0.3) == (None, False)
    time.sleep(0.35)
    assert pins.pin("c", ["b"], 0.3) == ("b", True)
