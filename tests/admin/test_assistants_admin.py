"""The assistant admin: the list, the change page, its versions, actions and export."""

from __future__ import annotations

import io
import json

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from conversations.assistants.library import record_version
from conversations.models import Assistant, ModelChoice, Visibility

LIST = reverse("admin:conversations_assistant_changelist")


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def upload(content: bytes | None = None) -> SimpleUploadedFile:
    if content is None:
        buffer = io.BytesIO()
        Image.new("RGB", (64, 64), "teal").save(buffer, "PNG")
        content = buffer.getvalue()
    return SimpleUploadedFile("face.png", content, content_type="image/png")


@pytest.fixture
def model(db) -> ModelChoice:
    return ModelChoice.objects.create(upstream_id="sim-chat", label="Sim Chat")


@pytest.fixture
def assistant(user, model) -> Assistant:
    return record_version(
        Assistant(
            owner=user,
            name="Translator",
            emoji="🌐",
            instructions="Translate into plain English.\nKeep names as they are.",
            model=model,
            starter_prompts=["Translate this"],
        )
    )


def change_url(assistant: Assistant) -> str:
    return reverse("admin:conversations_assistant_change", args=[assistant.pk])


def form(assistant: Assistant, **changes) -> dict:
    """The change form as the page sends it, with `changes`."""
    data = {
        "name": assistant.name,
        "description": assistant.description,
        "emoji": assistant.emoji,
        "owner": assistant.owner_id or "",
        "instructions": assistant.instructions,
        "model": assistant.model_id or "",
        "reasoning_effort": assistant.reasoning_effort,
        "starter_prompts": "\n".join(assistant.starter_prompts),
        "visibility": assistant.visibility,
        "enabled": "on",
        "versions-TOTAL_FORMS": "0",
        "versions-INITIAL_FORMS": "0",
        "versions-MIN_NUM_FORMS": "0",
        "versions-MAX_NUM_FORMS": "0",
        **changes,
    }
    return {key: value for key, value in data.items() if value is not None}


def test_list_shows_emoji_name_owner_and_version(admin_client, assistant):
    page = admin_client.get(LIST).content.decode()
    assert "🌐 Translator" in page and "ming" in page and "Sim Chat" in page


def test_list_filters_handed_over_assistants(admin_client, assistant, user):
    record_version(Assistant(name="Orphan", handed_over_from="gone", enabled=False))
    page = admin_client.get(LIST, {"handed_over": "yes"}).content.decode()
    assert "Orphan" in page and "Translator" not in page


def test_change_page_shows_the_versions_inline(admin_client, assistant):
    assistant.instructions = "Translate into French."
    record_version(assistant, {"instructions"})
    page = admin_client.get(change_url(assistant)).content.decode()
    assert page.count('class="assistant-instructions"') == 2
    assert "Translate into plain English." in page and 'name="versions-0-number"' not in page


def test_saving_new_instructions_makes_a_version(admin_client, assistant):
    response = admin_client.post(change_url(assistant), form(assistant, instructions="Be terse."))
    assert response.status_code == 302
    assistant.refresh_from_db()
    assert assistant.version == 2
    assert assistant.versions.get(number=2).instructions == "Be terse."


def test_saving_only_the_description_keeps_the_version(admin_client, assistant):
    admin_client.post(change_url(assistant), form(assistant, description="For the docs team"))
    assistant.refresh_from_db()
    assert (assistant.description, assistant.version) == ("For the docs team", 1)


def test_adding_through_the_admin_records_version_one(admin_client, assistant, user):
    new = Assistant(owner=user, name="Fresh", visibility=Visibility.TEAM)
    admin_client.post(reverse("admin:conversations_assistant_add"), form(new))
    assert Assistant.objects.get(name="Fresh").versions.count() == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"starter_prompts": "a\nb\nc\nd\ne"}, "at most 4 starter prompts"),
        ({"visibility": "groups"}, "Choose at least one group"),
        ({"reasoning_effort": "high"}, "does not reason"),
    ],
)
def test_change_form_applies_the_shared_rules(admin_client, assistant, changes, message):
    response = admin_client.post(change_url(assistant), form(assistant, **changes))
    assert message in response.content.decode()


def test_change_form_refuses_a_disabled_model(admin_client, assistant, model):
    ModelChoice.objects.filter(pk=model.pk).update(enabled=False)
    response = admin_client.post(change_url(assistant), form(assistant))
    assert "Sim Chat is disabled in the model catalogue" in response.content.decode()


def test_change_form_takes_groups(admin_client, assistant):
    ops = Group.objects.create(name="Ops")
    admin_client.post(change_url(assistant), form(assistant, visibility="groups", groups=[ops.pk]))
    assert list(assistant.groups.all()) == [ops]


def test_change_form_stores_an_uploaded_icon(admin_client, assistant):
    admin_client.post(change_url(assistant), form(assistant, icon_upload=upload()))
    assistant.refresh_from_db()
    assert assistant.icon and assistant.version == 1
    assert 'class="assistant-icon"' in admin_client.get(change_url(assistant)).content.decode()


def test_change_form_says_why_an_icon_was_refused(admin_client, assistant):
    response = admin_client.post(
        change_url(assistant),
        form(assistant, description="New", icon_upload=upload(b"not an image")),
        follow=True,
    )
    assistant.refresh_from_db()
    assert "The icon was not changed" in response.content.decode()
    assert not assistant.icon and assistant.description == "New"


def action(client, name: str, *assistants: Assistant):
    chosen = [a.pk for a in assistants]
    return client.post(LIST, {"action": name, "_selected_action": chosen}, follow=True)


def test_feature_and_unfeature(admin_client, assistant):
    action(admin_client, "feature", assistant)
    assistant.refresh_from_db()
    assert assistant.featured
    action(admin_client, "unfeature", assistant)
    assistant.refresh_from_db()
    assert not assistant.featured


def test_disable_and_enable_are_in_the_history(admin_client, assistant):
    response = action(admin_client, "disable", assistant)
    assistant.refresh_from_db()
    assert not assistant.enabled and "Disabled 1 assistant" in response.content.decode()
    action(admin_client, "enable", assistant)
    assistant.refresh_from_db()
    assert assistant.enabled
    assert LogEntry.objects.filter(object_id=str(assistant.pk)).count() == 2


def test_export_action_of_one_is_its_file(admin_client, assistant):
    response = action(admin_client, "export_json", assistant)
    assert json.loads(response.content)["name"] == "Translator"
    assert "translator.assistant.json" in response["Content-Disposition"]


def test_export_action_of_several_is_a_list(admin_client, assistant, user):
    other = record_version(Assistant(owner=user, name="Summariser"))
    response = action(admin_client, "export_json", assistant, other)
    names = [item["name"] for item in json.loads(response.content)]
    assert sorted(names) == ["Summariser", "Translator"]
    assert "owner" not in json.loads(response.content)[0]
