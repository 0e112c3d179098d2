"""seed_catalogue: adds the simulator's or the gateway's models once, never overwriting edits."""

from __future__ import annotations

import io
import socket
from decimal import Decimal

import pytest
from django.core.management import call_command

from conversations.catalogue import gateway_models as catalogue
from conversations.gateway.simulator.catalogue import MODELS
from conversations.models import ModelChoice
from tests.support.fixed_gateway import Reply, fixed_gateway, model_list


def seed() -> None:
    call_command("seed_catalogue", verbosity=0)


def test_seed_catalogue_adds_every_simulator_model(db):
    seed()
    assert set(ModelChoice.objects.values_list("upstream_id", flat=True)) == {
        m.name for m in MODELS
    }


def test_seed_catalogue_copies_capabilities_and_prices(db):
    seed()
    reasoner = ModelChoice.objects.get(upstream_id="sim-reasoner")
    assert reasoner.supports_reasoning and reasoner.effort_choices == ["low", "medium", "high"]
    assert reasoner.price_output == Decimal("10")


def test_seed_catalogue_makes_the_first_model_default(db):
    seed()
    assert ModelChoice.objects.get(is_default=True).upstream_id == MODELS[0].name


def test_seed_catalogue_keeps_admin_edits(db):
    seed()
    ModelChoice.objects.filter(upstream_id="sim-mini").update(
        label="Fast", price_input=9, enabled=False
    )
    seed()
    mini = ModelChoice.objects.get(upstream_id="sim-mini")
    assert (mini.label, mini.price_input, mini.enabled) == ("Fast", 9, False)


def test_seed_catalogue_adds_missing_entries_without_taking_the_default(db):
    ModelChoice.objects.create(upstream_id="house-model", label="House", is_default=True)
    seed()
    assert ModelChoice.objects.get(is_default=True).upstream_id == "house-model"
    assert ModelChoice.objects.count() == len(MODELS) + 1


# --- With a key: the gateway's own model list ---------------------------------------


@pytest.fixture
def keyed(settings):
    """Return a function pointing the app at a gateway URL with a key, as a deploy does."""

    def point(base_url: str, key: str = "sk-deploy-key-0123456789") -> None:
        settings.OPENAI_API_KEY = key
        settings.OPENAI_BASE_URL = base_url
        settings.GATEWAY_MAX_RETRIES = 0

    return point


def seed_with_output() -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("seed_catalogue", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_seed_catalogue_with_a_key_adds_the_gateways_models(keyed, db):
    with fixed_gateway({"/v1/models": model_list("openai/gpt-4.1-mini", "deepseek-chat")}) as url:
        keyed(url)
        seed()
    labels = dict(ModelChoice.objects.values_list("upstream_id", "label"))
    assert labels == {"openai/gpt-4.1-mini": "GPT-4.1 mini", "deepseek-chat": "Deepseek chat"}


def test_seed_catalogue_from_a_gateway_claims_no_capabilities(keyed, settings, db):
    settings.GATEWAY_STORE = False
    with fixed_gateway({"/v1/models": model_list("gpt-4.1")}) as url:
        keyed(url)
        seed()
    model = ModelChoice.objects.get()
    assert not (model.supports_reasoning or model.supports_web_search or model.supports_images)
    assert not model.supports_function_tools and model.tools == []
    assert model.context_mode == ModelChoice.ContextMode.REPLAY and model.is_default


def test_seed_catalogue_from_a_real_gateway_adds_no_simulator_model(keyed, db):
    with fixed_gateway({"/v1/models": model_list("gpt-5")}) as url:
        keyed(url)
        seed()
    assert list(ModelChoice.objects.values_list("upstream_id", flat=True)) == ["gpt-5"]
    assert ModelChoice.objects.get(is_default=True).upstream_id == "gpt-5"


def test_seed_catalogue_with_a_key_asks_the_simulator_over_http(keyed, simulator_server, db):
    keyed(simulator_server.base_url, simulator_server.api_key)
    seed()
    chat = ModelChoice.objects.get(is_default=True)
    assert chat.upstream_id == "sim-chat" and chat.supports_web_search
    assert ModelChoice.objects.count() == len(MODELS)


def test_seed_catalogue_skips_ids_it_cannot_store(keyed, db):
    listed = model_list("", "bad\x00id", "x" * 256, "good-model", "good-model")
    with fixed_gateway({"/v1/models": listed}) as url:
        keyed(url)
        out, _ = seed_with_output()
    assert list(ModelChoice.objects.values_list("upstream_id", flat=True)) == ["good-model"]
    assert "'" + "x" * 40 in out and "it is longer than 255 characters" in out


def test_seed_catalogue_with_a_key_keeps_entries_and_the_default(keyed, db):
    ModelChoice.objects.create(upstream_id="house", label="House", is_default=True, position=50)
    with fixed_gateway({"/v1/models": model_list("house", "gpt-5")}) as url:
        keyed(url)
        seed()
    house, new = ModelChoice.objects.order_by("position")
    assert (house.label, house.is_default) == ("House", True)
    assert (new.upstream_id, new.is_default, new.position) == ("gpt-5", False, 60)


def test_seed_catalogue_names_entries_the_gateway_does_not_list(keyed, db):
    ModelChoice.objects.create(upstream_id="retired", label="Retired")
    with fixed_gateway({"/v1/models": model_list("gpt-5")}) as url:
        keyed(url)
        out, _ = seed_with_output()
    assert "not in the gateway's list: retired" in out


def test_seed_catalogue_without_a_model_list_says_how_to_add_models(keyed, simulator_server, db):
    keyed(f"{simulator_server.base_url}/no-such-path", simulator_server.api_key)
    out, err = seed_with_output()
    assert not ModelChoice.objects.exists()
    assert "gave no model list" in err and '"upstream model id"' in err
    assert "Traceback" not in out + err and len(err.strip().splitlines()) == 1


def test_seed_catalogue_when_the_list_is_not_json_adds_nothing(keyed, db):
    page = Reply(200, b"<html>Sign in to the proxy</html>", "text/html")
    with fixed_gateway({"/v1/models": page}) as url:
        keyed(url)
        _, err = seed_with_output()
    assert not ModelChoice.objects.exists()
    assert "gave no model list" in err and "Models → Add" in err


def test_seed_catalogue_when_the_gateway_is_down_adds_nothing(keyed, db):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    keyed(f"http://127.0.0.1:{port}/v1")
    _, err = seed_with_output()
    assert not ModelChoice.objects.exists() and "Models → Add" in err


def test_seed_catalogue_never_prints_the_key(keyed, simulator_server, db):
    keyed(simulator_server.base_url, "sk-wrong-key-SECRET-abcdef0123456789")
    out, err = seed_with_output()
    assert "refused the API key" in err
    assert "SECRET" not in out + err


def test_seed_catalogue_gives_up_on_a_stalled_gateway(keyed, monkeypatch, db):
    monkeypatch.setattr(catalogue, "MODEL_LIST_TIMEOUT", 0.5)
    with fixed_gateway({"/v1/models": Reply(200, b"{}", delay=5)}) as url:
        keyed(url)
        _, err = seed_with_output()
    assert "did not list its models within 0.5 seconds" in err
    assert not ModelChoice.objects.exists()
