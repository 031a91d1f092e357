"""deploy/compose.yaml's topology on this machine, through ``debtbot run``: one Redis, then each
process the compose file declares (its services, replicas and commands: 2 gateways, 2 workers,
rasa1 and rasa2), the compose's hosts mapped to 127.0.0.1 and free ports. Signed SMS webhooks
through both gateways, for debtors on both Rasa servers: each message is answered, once, and
each conversation is pinned (in Redis) to the server its id hashes to."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from bot.config import load_config
from bot.runtime.launch import dialogue_ready
from bot.runtime.supervisor import ManagedProcess, ProcessSpec
from bot.store.accounts import AccountStore
from bot.store.connection import Keys
from dialogue.rasa_pool import RedisPins, server_for
from tests.conftest import ROOT, TEST_SECRETS, free_port, wait_for
from tests.deploy.test_compose import compose, debtbot_services, environment
from tests.e2e.conftest import TWILIO_SID
from tests.fakes.twilio_api import FakeTwilio
from tests.helpers import signed_sms

#: The stand-in's, not a secret.
TWILIO_TOKEN = "topology-twilio-token"


def _processes(redis_url: str, twilio: FakeTwilio, folder: Path) -> list[tuple[str, dict[str, str]]]:
    """(name, environment) of every process compose.yaml declares, in its order: each replica of
    each service, with the compose's hosts mapped to 127.0.0.1 and free ports."""
    services = debtbot_services()
    rasa_hosts = sorted(name for name in services if name.startswith("rasa"))
    moved = {
        f"http://{host}:{port}": f"http://127.0.0.1:{free_port()}"
        for host in rasa_hosts
        for port in (5005, 5055)
    }
    secrets = {**TEST_SECRETS, "REDIS_URL": redis_url, "TWILIO_ACCOUNT_SID": TWILIO_SID,
               "TWILIO_AUTH_TOKEN": TWILIO_TOKEN, "DATABASE_URL": f"sqlite:///{folder / 'analytics.db'}"}  # fmt: skip
    here = {
        # The compose network's names and addresses, on this machine.
        "DEBTBOT__RASA__BIND_HOST": "127.0.0.1",
        "DEBTBOT__SERVER__HOST": "127.0.0.1",
        "DEBTBOT__CHANNELS__SMS__API_BASE_URL": twilio.base_url,
        "DEBTBOT__CHANNELS__SMS__SEGMENTS_PER_SECOND": "100",
        "DEBTBOT__CHANNELS__TELEGRAM__ENABLED": "false",
        "DEBTBOT_CONFIG": str(ROOT / "config.yaml"),
    }
    declared = []
    for name, service in services.items():
        env = environment(service)
        for key in ("DEBTBOT__RASA__URLS", "DEBTBOT__RASA__ACTIONS_URLS"):
            for before, after in moved.items():
                env[key] = env[key].replace(before, after)
        for replica in range(1, service.get("deploy", {}).get("replicas", 1) + 1):
            extra = {"DEBTBOT__SERVER__PORT": str(free_port())} if name == "gateway" else {}
            declared.append((f"{name}.{replica}", {**env, **secrets, **here, **extra}))
    return declared


@pytest.mark.e2e
def test_the_compose_topology_answers_every_message_once_across_gateways_and_rasa_servers(
    tmp_path: Path,
    redis_url: str,
    redis_client: redis.Redis[bytes],
    trained_model: Path,
    fake_twilio: FakeTwilio,
) -> None:
    declared = _processes(redis_url, fake_twilio, tmp_path)
    services = compose()["services"]
    log_path = tmp_path / "topology.log"
    log = log_path.open("a", encoding="utf-8")
    processes: dict[str, ManagedProcess] = {}
    for name, env in declared:
        command = services[name.split(".")[0]]["command"]
        spec = ProcessSpec(name, [sys.executable, "-m", "bot.cli", *command], {**os.environ, **env}, ROOT,
                           stop_timeout=45)  # fmt: skip
        processes[name] = ManagedProcess(spec, log)
    configs = {name: load_config(None, env) for name, env in declared}
    some = next(iter(configs.values()))
    keys = Keys(some.redis.key_prefix)
    report = AccountStore(redis_client, keys).import_csv(
        (ROOT / "examples" / "accounts.csv").read_text(),
        languages=["en", "es"], default_language="en", verification_field="date_of_birth",
    )  # fmt: skip
    assert not report.errors
    try:
        for process in processes.values():
            process.start()
        servers = some.rasa.servers
        wait_for(lambda: all(dialogue_ready(some, s) for s in servers), timeout=300, interval=1, what="Rasa")
        gateways = [configs[name].server.internal_url for name in configs if name.startswith("gateway")]
        assert len(gateways) == 2 and len(set(gateways)) == 2

        def answering() -> bool:
            try:
                return all(httpx.get(f"{url}/healthz", timeout=5).status_code == 200 for url in gateways)
            except httpx.HTTPError:
                return False

        wait_for(answering, timeout=120, interval=1, what="both gateways' /healthz (workers beating)")
        # Two debtors on each Rasa server, by the hash of their conversation's id.
        accounts = AccountStore(redis_client, keys)
        urls = some.rasa.server_urls
        chosen: dict[str, list[Any]] = {url: [] for url in urls}
        for account_id in sorted(accounts.ids()):
            account = accounts.get(account_id)
            server = server_for(urls, f"acct-{account_id}")
            if account is not None and account.phone and len(chosen[server]) < 2:
                chosen[server].append(account)
        debtors = [account for url in urls for account in chosen[url]]
        assert len(debtors) == 4
        public = f"{some.server.public_url}/webhooks/sms"
        for n, debtor in enumerate(debtors):
            form = {"MessageSid": f"SMtopology{n:024d}", "AccountSid": TWILIO_SID, "From": debtor.phone,
                    "To": "+15005550006", "Body": "hello"}  # fmt: skip
            body, headers = signed_sms(form, url=public, token=TWILIO_TOKEN)
            gateway = gateways[n % 2]
            assert (
                httpx.post(f"{gateway}/webhooks/sms", content=body, headers=headers, timeout=10).status_code
                == 200
            )
            # The provider's retry of the same message, through the other gateway: not answered again.
            other = gateways[(n + 1) % 2]
            assert (
                httpx.post(f"{other}/webhooks/sms", content=body, headers=headers, timeout=10).status_code
                == 200
            )

        def replies(phone: str) -> list[str]:
            return [m.body for m in fake_twilio.messages if m.to == phone]

        wait_for(
            lambda: all(replies(d.phone) for d in debtors), timeout=120, interval=0.5, what="every reply"
        )
        time.sleep(3)  # anything sent twice would be there by now
        first = {d.phone: replies(d.phone) for d in debtors}
        for phone, texts in first.items():
            assert len(texts) == len(set(texts)), f"{phone} answered twice: {texts}"
        # Each conversation is pinned to the server its id hashes to: both servers were used.
        pins = {}
        for debtor in debtors:
            pinned = redis_client.get(RedisPins(redis_client, keys.prefix).key(f"acct-{debtor.account_id}"))
            pins[debtor.account_id] = pinned.decode() if pinned else None
        assert {pins[d.account_id] for d in debtors} == set(urls), pins
        assert all(pins[d.account_id] == server_for(urls, f"acct-{d.account_id}") for d in debtors)
    except AssertionError:
        log.flush()
        raise AssertionError("failed; the processes' output:\n" + log_path.read_text()[-6000:]) from None
    finally:
        for process in reversed(list(processes.values())):
            process.stop()
        log.close()
