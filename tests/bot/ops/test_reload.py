"""``debtbot reload`` loads the model into every Rasa server the worker uses (no Rasa started)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from bot.ops import reload as reload_module
from bot.ops.reload import reload, server_urls
from tests.conftest import ConfigFactory


def test_the_servers_are_every_one_the_worker_uses(make_config: ConfigFactory) -> None:
    assert server_urls(make_config()) == ["http://127.0.0.1:5005"]
    assert server_urls(make_config(rasa={"processes": 2})) == [
        "http://127.0.0.1:5005",
        "http://127.0.0.1:5006",
    ]
    elsewhere = make_config(rasa={"urls": ["http://a.internal:5005", "http://b.internal:5005"]})
    assert server_urls(elsewhere) == ["http://a.internal:5005", "http://b.internal:5005"]


def test_a_reload_goes_to_every_server(
    make_config: ConfigFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "old.tar.gz").write_bytes(b"old")
    new = models / "new.tar.gz"
    new.write_bytes(b"new")
    loaded: dict[str, str] = {}

    def server(request: httpx.Request) -> httpx.Response:
        base = f"http://{request.url.host}:{request.url.port}"
        if request.method == "PUT":
            loaded[base] = str(json.loads(request.content)["model_file"])
            return httpx.Response(204)
        return httpx.Response(200, json={"model_file": "old.tar.gz"})

    def client(token: str, timeout: float) -> httpx.Client:
        return httpx.Client(
            transport=httpx.MockTransport(server), headers={"Authorization": f"Bearer {token}"}
        )

    monkeypatch.setattr(reload_module, "_client", client)
    config = make_config(rasa={"processes": 3})
    result = reload(server_urls(config), "t", new, models_dir=models, canary=lambda url, token: None)
    assert result.ok, result.message
    assert loaded == {url: str(new.resolve()) for url in server_urls(config)}
