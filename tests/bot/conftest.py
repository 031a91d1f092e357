"""Fixtures for the gateway's tests: a configuration with a public URL, its services and app."""

from __future__ import annotations

import pytest
import redis
from flask.testing import FlaskClient

from bot.config import Config
from bot.gateway.app import create_app
from bot.runtime.services import Services, build_services
from tests.conftest import ConfigFactory

PUBLIC = "https://bot.example.com"


@pytest.fixture
def config(make_config: ConfigFactory) -> Config:
    return make_config(server={"public_url": PUBLIC})


@pytest.fixture
def services(config: Config, redis_client: redis.Redis) -> Services:
    return build_services(config, redis_client)


@pytest.fixture
def client(config: Config, services: Services) -> FlaskClient:
    return create_app(config, services).test_client()
