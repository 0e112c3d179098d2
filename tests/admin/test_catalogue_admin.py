"""The Models admin: what the app learned from the gateway, the check, and forgetting it."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from conversations.models import ModelChoice
from tests.support.fixed_gateway import fixed_gateway

CATALOGUE = reverse("admin:conversations_modelchoice_changelist")


@pytest.fixture
def listing(simulator_server, settings):
    """Point the app at the session's simulator over real HTTP: it lists the sim-* models."""
    settings.OPENAI_API_KEY = simulator_server.api_key
    settings.OPENAI_BASE_URL = simulator_server.base_url
    settings.GATEWAY_MAX_RETRIES = 0


@pytest.fixture
def chat(db) -> ModelChoice:
    return ModelChoice.objects.create(upstream_id="sim-chat", label="Sim Chat", is_default=True)


@pytest.fixture
def house(db) -> ModelChoice:
    return ModelChoice.objects.create(upstream_id="house-model", label="House", position=20)


@pytest.fixture
def taught(chat) -> ModelChoice:
    """Sim Chat after the gateway taught the app three things about it."""
    chat.stateless_detected_at = timezone.now()
    chat.stateless_evidence = "Sent previous_response_id resp_1, got back chatcmpl-9"
    chat.unsupported_params = {
        "reasoning": {"at": "2026-12-01T09:30:00+00:00", "message": "<b>UnsupportedParams</b>"},
        "temperature": {"at": "2026-12-02T10:00:00+00:00", "message": "temperature is fixed"},
    }
    chat.unknown_to_gateway_at = timezone.now()
    chat.unknown_to_gateway_evidence = "Invalid model name passed in model=sim-chat"
    chat.save()
    return chat


def act(client, action: str, *models: ModelChoice):
    return client.post(
        CATALOGUE,
        {"action": action, "_selected_action": [model.pk for model in models]},
        follow=True,
    )


def shown_messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def change_page(client, model: ModelChoice) -> str:
    url = reverse("admin:conversations_modelchoice_change", args=[model.pk])
    return client.get(url).content.decode()


def form(model: ModelChoice, **overrides) -> dict:
    return {
        "label": model.label,
        "upstream_id": model.upstream_id,
        "enabled": "on",
        "position": str(model.position),
        "reasoning_efforts": "",
        "default_reasoning_effort": "",
        "price_input": "0",
        "price_cached_input": "0",
        "price_output": "0",
        "context_mode": "auto",
        **overrides,
    }


def test_check_marks_models_the_gateway_does_not_list(admin_client, listing, chat, house):
    response = act(admin_client, "check_against_gateway", chat, house)
    house.refresh_from_db()
    assert house.unknown_to_gateway_at is not None
    assert house.unknown_to_gateway_evidence.startswith("Not in the gateway's model list (checked")
    assert shown_messages(response) == [
        "Checked 2 models against the gateway's list: 1 is missing (House)."
    ]


def test_check_clears_models_the_gateway_lists(admin_client, listing, taught):
    response = act(admin_client, "check_against_gateway", taught)
    taught.refresh_from_db()
    assert taught.unknown_to_gateway_at is None and taught.unknown_to_gateway_evidence == ""
    assert "the gateway lists every one" in shown_messages(response)[0]


def test_check_without_a_key_asks_the_embedded_simulator(admin_client, chat, house):
    response = act(admin_client, "check_against_gateway", chat, house)
    marked = ModelChoice.objects.filter(unknown_to_gateway_at__isnull=False)
    assert list(marked.values_list("upstream_id", flat=True)) == ["house-model"]
    assert "this is the built-in simulator's list" in shown_messages(response)[0]


def test_check_changes_nothing_when_the_gateway_has_no_list(admin_client, settings, taught, house):
    with fixed_gateway({}) as url:
        settings.OPENAI_API_KEY, settings.OPENAI_BASE_URL = "sk-test-key-0000", url
        response = act(admin_client, "check_against_gateway", taught, house)
    assert "did not give its model list" in shown_messages(response)[0]
    assert ModelChoice.objects.filter(unknown_to_gateway_at__isnull=False).count() == 1


def test_forget_action_clears_what_the_gateway_taught(admin_client, taught):
    act(admin_client, "forget_lessons", taught)
    taught.refresh_from_db()
    assert taught.stateless_detected_at is None and taught.stateless_evidence == ""
    assert taught.unsupported_params == {} and taught.unknown_to_gateway_at is None
    assert not taught.replays_history


def test_forget_button_on_the_change_page(admin_client, taught):
    url = reverse("admin:conversations_modelchoice_forget", args=[taught.pk])
    assert admin_client.get(url).status_code == 400
    response = admin_client.post(url)
    taught.refresh_from_db()
    assert response.status_code == 302 and taught.unsupported_params == {}


def test_forget_button_needs_the_change_permission(client, make_user, taught):
    from django.contrib.auth.models import Permission

    viewer = make_user("viewer", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_modelchoice"))
    client.force_login(viewer)
    page = change_page(client, taught)
    url = reverse("admin:conversations_modelchoice_forget", args=[taught.pk])
    assert "Forget what the gateway taught us" not in page
    assert client.post(url).status_code == 403


def test_change_page_shows_what_the_gateway_taught(admin_client, taught):
    page = change_page(admin_client, taught)
    assert "Gateway behaviour" in page and "got back chatcmpl-9" in page
    assert "Invalid model name passed in model=sim-chat" in page
    assert "<code>reasoning</code>" in page and "temperature is fixed" in page
    assert "&lt;b&gt;UnsupportedParams&lt;/b&gt;" in page and "<b>Unsupported" not in page
    assert "Forget what the gateway taught us" in page


def test_change_page_shows_when_a_parameter_was_rejected(admin_client, settings, taught):
    settings.TIME_ZONE = "UTC"
    page = change_page(admin_client, taught)
    assert "Dec. 1, 2026, 9:30 a.m." in page


def test_catalogue_list_shows_a_compact_gateway_status(admin_client, taught, house):
    house.context_mode = ModelChoice.ContextMode.REPLAY
    house.save()
    page = admin_client.get(CATALOGUE).content.decode()
    assert "replays history (stateless gateway); rejected: reasoning, temperature; unknown" in page
    assert '<td class="field-gateway_status">replays history</td>' in page


def test_change_page_edits_context_mode_window_and_title_model(admin_client, chat):
    url = reverse("admin:conversations_modelchoice_change", args=[chat.pk])
    admin_client.post(
        url, form(chat, context_mode="replay", context_window="32000", use_for_titles="on")
    )
    chat.refresh_from_db()
    assert (chat.context_mode, chat.context_window, chat.use_for_titles) == ("replay", 32000, True)


def test_only_one_model_may_write_titles(admin_client, chat, house):
    house.use_for_titles = True
    house.save()
    url = reverse("admin:conversations_modelchoice_change", args=[chat.pk])
    response = admin_client.post(url, form(chat, use_for_titles="on"))
    assert "House already writes titles" in response.content.decode()
    assert list(ModelChoice.objects.filter(use_for_titles=True)) == [house]


def test_title_model_can_be_saved_again(admin_client, house):
    house.use_for_titles = True
    house.save()
    url = reverse("admin:conversations_modelchoice_change", args=[house.pk])
    response = admin_client.post(url, form(house, use_for_titles="on"))
    assert response.status_code == 302


def test_check_records_the_time_of_the_check(admin_client, listing, settings, house):
    settings.TIME_ZONE = "UTC"
    before = timezone.now() - datetime.timedelta(seconds=1)
    act(admin_client, "check_against_gateway", house)
    house.refresh_from_db()
    assert house.unknown_to_gateway_at >= before
