"""seed_catalogue: adds the simulator's models once and never overwrites admin edits."""

from __future__ import annotations

from decimal import Decimal

from django.core.management import call_command

from conversations.gateway.simulator.catalogue import MODELS
from conversations.models import ModelChoice


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
