"""A deleted user's assistants and saved prompts: passed on or kept, never lost silently."""

from __future__ import annotations

import logging

import pytest
from django.contrib.auth import get_user_model

from conversations.assistants.library import record_version
from conversations.models import Assistant, Conversation, SavedPrompt, Visibility


@pytest.fixture
def leaving(make_user):
    return make_user("leaving")


def assistant_of(owner, name: str = "Helper", **fields) -> Assistant:
    return record_version(Assistant(owner=owner, name=name, **fields))


def prompt_of(owner, command: str, visibility: str = Visibility.TEAM) -> SavedPrompt:
    return SavedPrompt.objects.create(
        owner=owner, command=command, text="Hi", visibility=visibility
    )


def test_assistants_pass_to_the_first_superuser(leaving, make_user):
    make_user("staffer", is_staff=True)
    boss = make_user("boss", is_staff=True, is_superuser=True)
    helper = assistant_of(leaving, visibility=Visibility.TEAM)
    leaving.delete()
    helper.refresh_from_db()
    assert (helper.owner, helper.handed_over_from, helper.enabled) == (boss, "leaving", True)
    assert helper.visibility == Visibility.TEAM


def test_without_a_superuser_the_first_staff_member_takes_them(leaving, make_user):
    first = make_user("first", is_staff=True)
    make_user("second", is_staff=True)
    make_user("retired", is_staff=True, is_superuser=True, is_active=False)
    helper = assistant_of(leaving)
    leaving.delete()
    helper.refresh_from_db()
    assert helper.owner == first


def test_without_staff_assistants_are_kept_disabled(leaving, user):
    helper = assistant_of(leaving)
    leaving.delete()
    helper.refresh_from_db()
    assert (helper.owner, helper.enabled, helper.handed_over_from) == (None, False, "leaving")


def test_a_deleted_staff_member_takes_nothing_over(make_user):
    boss = make_user("boss", is_staff=True, is_superuser=True)
    helper = assistant_of(boss)
    boss.delete()
    helper.refresh_from_db()
    assert helper.owner is None and not helper.enabled


def test_users_deleted_together_hand_over_to_none_of_them(make_user):
    boss = make_user("boss", is_staff=True, is_superuser=True)
    staffer = make_user("staffer", is_staff=True)
    stays = make_user("stays", is_staff=True)
    helper = assistant_of(staffer)
    get_user_model().objects.filter(pk__in=[boss.pk, staffer.pk]).delete()
    helper.refresh_from_db()
    assert helper.owner == stays and helper.enabled


def test_conversations_of_others_keep_the_assistant(leaving, user, make_user):
    make_user("boss", is_staff=True, is_superuser=True)
    helper = assistant_of(leaving, visibility=Visibility.TEAM)
    chat = Conversation.objects.create(owner=user, assistant=helper)
    leaving.delete()
    chat.refresh_from_db()
    assert chat.assistant == helper


def test_shared_prompts_pass_and_private_ones_go(leaving, make_user):
    boss = make_user("boss", is_staff=True, is_superuser=True)
    shared = prompt_of(leaving, "standup")
    private = prompt_of(leaving, "diary", Visibility.PRIVATE)
    leaving.delete()
    shared.refresh_from_db()
    assert (shared.owner, shared.handed_over_from) == (boss, "leaving")
    assert not SavedPrompt.objects.filter(pk=private.pk).exists()


def test_a_passed_prompt_whose_command_the_heir_has_is_renamed(leaving, make_user):
    boss = make_user("boss", is_staff=True, is_superuser=True)
    prompt_of(boss, "standup")
    prompt_of(boss, "standup-2")
    passed = prompt_of(leaving, "standup")
    leaving.delete()
    passed.refresh_from_db()
    assert (passed.owner, passed.command) == (boss, "standup-3")


def test_without_staff_shared_prompts_are_kept_ownerless(leaving, user):
    shared = prompt_of(leaving, "standup", Visibility.GROUPS)
    leaving.delete()
    shared.refresh_from_db()
    assert (shared.owner, shared.handed_over_from) == (None, "leaving")


def test_the_handover_is_logged(leaving, make_user, caplog):
    make_user("boss", is_staff=True, is_superuser=True)
    assistant_of(leaving)
    with caplog.at_level(logging.INFO, logger="conversations.assistants.handover"):
        leaving.delete()
    assert "assistants 1, shared prompts 0, passed to boss" in caplog.text
