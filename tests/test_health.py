from __future__ import annotations

import pytest
from channels.layers import channel_layers
from django.test import override_settings

from tests.servers import free_port


@pytest.fixture
def reset_channel_layers():
    """Drop cached layer backends so an overridden CHANNEL_LAYERS takes effect."""
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.mark.django_db
def test_healthz_ok_when_database_and_layer_answer(client, reset_channel_layers):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "channel_layer": "ok"},
    }


@pytest.mark.django_db
def test_healthz_503_names_the_channel_layer_when_redis_is_down(client, reset_channel_layers):
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    layers = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [dead_redis]},
        }
    }
    with override_settings(CHANNEL_LAYERS=layers):
        response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "ok"
    assert response.json()["checks"]["channel_layer"] != "ok"


def test_healthz_needs_no_login_and_no_redirect(client, db):
    assert client.get("/healthz").status_code == 200
