"""The composer's model picker says when the gateway does not know a model."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from conversations.models import ModelChoice

MARKER = "Sim Chat — not known to the model service"
WARNING = "The model service said it does not know this model"


@pytest.fixture
def unknown(db) -> ModelChoice:
    return ModelChoice.objects.create(
        upstream_id="sim-chat",
        label="Sim Chat",
        is_default=True,
        unknown_to_gateway_at=timezone.now(),
        unknown_to_gateway_evidence="Invalid model name passed in model=sim-chat",
    )


@pytest.fixture
def known(db) -> ModelChoice:
    return ModelChoice.objects.create(upstream_id="sim-mini", label="Sim Mini", position=20)


def test_picker_marks_a_model_the_gateway_does_not_know(client, user, unknown, known):
    client.force_login(user)
    page = client.get(reverse("chat")).content.decode()
    assert MARKER in page and ">Sim Mini</option>" in page


def test_picker_warns_when_the_unknown_model_is_selected(client, user, unknown, known):
    client.force_login(user)
    assert WARNING in client.get(reverse("chat")).content.decode()


def test_picking_a_known_model_drops_the_warning(client, user, unknown, known):
    client.force_login(user)
    options = reverse("composer_options")
    assert WARNING not in client.get(options, {"model": known.pk}).content.decode()
    assert WARNING in client.get(options, {"model": unknown.pk}).content.decode()
