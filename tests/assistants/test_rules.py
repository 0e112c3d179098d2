"""The setup rules the admin, the user's form and import share."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError

from conversations.assistants import rules
from conversations.models import STARTER_PROMPT_CHARS, ModelChoice, Visibility


@pytest.fixture
def model(db) -> ModelChoice:
    return ModelChoice.objects.create(
        upstream_id="sim-think",
        label="Sim Think",
        supports_reasoning=True,
        reasoning_efforts="low,medium,high",
    )


def test_starter_prompts_drop_blanks_and_strip():
    assert rules.clean_starter_prompts([" Plan a trip ", "", "  "]) == ["Plan a trip"]


def test_starter_prompts_refuse_a_fifth():
    with pytest.raises(ValidationError, match="at most 4 starter prompts; this one has 5"):
        rules.clean_starter_prompts(["a", "b", "c", "d", "e"])


def test_starter_prompts_refuse_one_too_long():
    with pytest.raises(ValidationError, match="Starter prompt 2 is 301 characters"):
        rules.clean_starter_prompts(["ok", "x" * (STARTER_PROMPT_CHARS + 1)])


def test_model_refused_when_disabled(model):
    model.enabled = False
    with pytest.raises(ValidationError, match="Sim Think is disabled"):
        rules.clean_model(model)


def test_model_may_be_none():
    assert rules.clean_model(None) is None


def test_effort_must_be_one_the_model_accepts(model):
    assert rules.clean_reasoning_effort(" high ", model) == "high"
    with pytest.raises(ValidationError, match="accepts the reasoning efforts low, medium, high"):
        rules.clean_reasoning_effort("extreme", model)


def test_effort_refused_for_a_model_that_does_not_reason(model):
    model.supports_reasoning = False
    with pytest.raises(ValidationError, match="does not reason"):
        rules.clean_reasoning_effort("low", model)


def test_effort_without_a_model_is_kept():
    assert rules.clean_reasoning_effort("low", None) == "low"


def test_tools_must_exist_and_come_once_each():
    assert rules.clean_tools(["calculate", "calculate"]) == ["calculate"]
    with pytest.raises(ValidationError, match="no tool called “rm_rf”"):
        rules.clean_tools(["calculate", "rm_rf"])


def test_groups_needed_for_given_groups(db):
    with pytest.raises(ValidationError, match="Choose at least one group"):
        rules.clean_groups(Visibility.GROUPS, [])
    rules.clean_groups(Visibility.GROUPS, [Group.objects.create(name="Ops")])
    rules.clean_groups(Visibility.TEAM, [])
