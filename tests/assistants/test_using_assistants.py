"""Using an assistant: who may, what its conversations send, the version each answer
notes, and what happens when someone loses it. Over HTTP, the real socket and both send
paths (the quick three-statement path and the ORM path)."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group
from django.urls import reverse

from conversations.assistants.library import record_version
from conversations.models import (
    Assistant,
    AssistantVersion,
    Conversation,
    Message,
    UsageRecord,
    UserPreference,
    Visibility,
)
from conversations.pipeline import quicksend, starts
from conversations.pipeline.admission import Refused
from conversations.pipeline.assistance import AssistantUnavailable
from conversations.pipeline.plans import TurnOptions
from tests.gateway.helpers import image_bytes
from tests.support.chat import final_answer, open_socket, receive_until, send, visible_text
from tests.support.direct_turns import finish, model

PATHS = [quicksend.prepare_send, starts.prepare_send]


def make_assistant(owner, **fields) -> Assistant:
    groups = fields.pop("groups", ())
    assistant = Assistant(
        owner=owner,
        name=fields.pop("name", "SQL reviewer"),
        instructions=fields.pop("instructions", "Review SQL against our style guide."),
        **fields,
    )
    record_version(assistant)
    assistant.groups.set(groups)
    return assistant


def ask(path, user, conversation_id=None, *, text="Check this query", model_id=None, **options):
    return path(
        user=user,
        conversation_id=conversation_id,
        text=text,
        model_id=model_id or model().pk,
        instructions=None,
        worker_channel="worker-1",
        options=TurnOptions(**options),
    )


@pytest.fixture
def team(db, make_user):
    """An owner, a member of the owner's group, and a stranger outside it."""
    group = Group.objects.create(name="Data")
    owner, member, stranger = make_user("olga"), make_user("mei"), make_user("sam")
    owner.groups.add(group)
    member.groups.add(group)
    return owner, member, stranger, group


# --- Visibility over HTTP ---------------------------------------------------------------


@pytest.mark.django_db
def test_a_group_assistant_is_listed_and_startable_for_members_only(client, team, catalogue):
    owner, member, stranger, group = team
    assistant = make_assistant(owner, visibility=Visibility.GROUPS, groups=[group])

    client.force_login(member)
    assert "SQL reviewer" in client.get(reverse("assistants")).text
    page = client.get(reverse("chat"), {"assistant": assistant.pk})
    assert page.status_code == 200
    assert f'name="assistant" value="{assistant.pk}"' in page.text

    client.force_login(stranger)
    assert "SQL reviewer" not in client.get(reverse("assistants")).text
    assert client.get(reverse("chat"), {"assistant": assistant.pk}).status_code == 404
    assert client.get(reverse("assistant_edit", args=[assistant.pk])).status_code == 404
    assert client.post(reverse("assistant_delete", args=[assistant.pk])).status_code == 404
    assert Assistant.objects.filter(pk=assistant.pk).exists()


@pytest.mark.django_db
def test_members_use_an_assistant_but_only_its_owner_and_staff_edit_it(client, team, make_user):
    owner, member, _stranger, group = team
    assistant = make_assistant(owner, visibility=Visibility.GROUPS, groups=[group])

    client.force_login(member)
    assert client.get(reverse("assistant_edit", args=[assistant.pk])).status_code == 404
    client.force_login(make_user("admin", is_staff=True))
    assert client.get(reverse("assistant_edit", args=[assistant.pk])).status_code == 200


@pytest.mark.django_db
def test_a_new_chats_screen_offers_the_assistants_featured_first(client, team):
    owner, member, _stranger, _group = team
    make_assistant(owner, name="Zeta writer", visibility=Visibility.TEAM, featured=True)
    make_assistant(owner, name="Alpha helper", visibility=Visibility.TEAM)
    make_assistant(owner, name="Hidden", visibility=Visibility.TEAM, enabled=False)
    client.force_login(member)

    text = visible_text(client.get(reverse("chat")).text)

    assert text.index("Zeta writer") < text.index("Alpha helper")
    assert "Hidden" not in text


@pytest.mark.django_db
def test_the_assistants_screen_shows_its_starters_and_presets_its_model(client, team, catalogue):
    owner, member, _stranger, _group = team
    assistant = make_assistant(
        owner,
        visibility=Visibility.TEAM,
        model=model("sim-reasoner"),
        reasoning_effort="high",
        starter_prompts=["Review my JOINs", "解释这个查询"],
        lock_options=True,
    )
    client.force_login(member)

    page = client.get(reverse("chat"), {"assistant": assistant.pk}).text

    assert 'data-example-prompt="解释这个查询"' in page
    assert f'<option value="{model("sim-reasoner").pk}" selected>' in page
    assert '<option value="high" selected>' in page
    assert 'id="composer-model" name="model" class="model-picker" disabled' in page


# --- What a turn sends -----------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("path", PATHS)
def test_instructions_go_site_then_assistant_then_personal_then_conversation(
    path, team, catalogue, settings
):
    owner, member, _stranger, _group = team
    settings.CHAT_SITE_INSTRUCTIONS = "House rules."
    assistant = make_assistant(owner, visibility=Visibility.TEAM)
    UserPreference.objects.create(user=member, answer_style="Answer in Chinese.")
    finish(ask(quicksend.prepare_send, member).plan)  # the user's first send, for the quick path
    first = ask(path, member, assistant_id=assistant.pk)
    finish(first.plan)
    Conversation.objects.filter(pk=first.conversation.pk).update(instructions="Be brief.")

    later = ask(path, member, first.conversation.pk)

    assert later.plan.instructions == (
        "House rules.\n\nReview SQL against our style guide.\n\n"
        "How the user wants you to answer:\nAnswer in Chinese.\n\nBe brief."
    )
    assert Conversation.objects.get(pk=first.conversation.pk).assistant == assistant
    # Not stored into the user's history: the conversation keeps only its own.
    assert Conversation.objects.get(pk=first.conversation.pk).instructions == "Be brief."


@pytest.mark.django_db
@pytest.mark.parametrize("path", PATHS)
def test_each_answer_notes_the_version_it_used_and_edits_reach_later_turns(path, team, catalogue):
    owner, member, _stranger, _group = team
    assistant = make_assistant(owner, visibility=Visibility.TEAM)
    finish(ask(quicksend.prepare_send, member).plan)
    first = ask(path, member, assistant_id=assistant.pk)
    finish(first.plan)

    assistant.instructions = "Review SQL; flag every SELECT *."
    record_version(assistant, {"instructions"})
    later = ask(path, member, first.conversation.pk)

    answers = Message.objects.filter(conversation=first.conversation, role="assistant")
    assert [(m.assistant_id, m.assistant_version) for m in answers] == [
        (assistant.pk, 1),
        (assistant.pk, 2),
    ]
    assert later.plan.instructions == "Review SQL; flag every SELECT *."
    assert list(
        AssistantVersion.objects.filter(assistant=assistant).values_list("number", "instructions")
    ) == [
        (2, "Review SQL; flag every SELECT *."),
        (1, "Review SQL against our style guide."),
    ]


@pytest.mark.django_db
def test_renaming_an_assistant_makes_no_new_version(team):
    owner, *_ = team
    assistant = make_assistant(owner)

    assistant.name = "SQL critic"
    record_version(assistant, {"name"})

    assert assistant.version == 1
    assert assistant.versions.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("path", PATHS)
def test_locked_options_override_what_the_page_sent(path, team, catalogue):
    owner, member, _stranger, _group = team
    assistant = make_assistant(
        owner,
        visibility=Visibility.TEAM,
        model=model("sim-reasoner"),
        reasoning_effort="high",
        lock_options=True,
    )
    finish(ask(quicksend.prepare_send, member).plan)

    result = ask(
        path, member, model_id=model("sim-mini").pk, effort="low", assistant_id=assistant.pk
    )

    assert result.plan.model == "sim-reasoner"
    assert result.plan.reasoning_effort == "high"


@pytest.mark.django_db
def test_unlocked_options_are_the_users_to_change(team, catalogue):
    owner, member, _stranger, _group = team
    assistant = make_assistant(owner, visibility=Visibility.TEAM, model=model("sim-reasoner"))

    result = ask(
        starts.prepare_send, member, model_id=model("sim-mini").pk, assistant_id=assistant.pk
    )

    assert result.plan.model == "sim-mini"


@pytest.mark.django_db
def test_the_assistant_picks_which_of_the_models_tools_are_on(team, catalogue):
    owner, member, _stranger, _group = team
    assistant = make_assistant(owner, visibility=Visibility.TEAM, tools=["calculate"])
    plain = ask(starts.prepare_send, member)

    assisted = ask(starts.prepare_send, member, assistant_id=assistant.pk)

    assert "calculate" in plain.plan.tools and len(plain.plan.tools) > 1
    assert assisted.plan.tools == ("calculate",)


@pytest.mark.django_db
def test_usage_is_recorded_under_the_assistant_and_charged_to_the_user(team, catalogue):
    owner, member, _stranger, _group = team
    assistant = make_assistant(owner, visibility=Visibility.TEAM)

    finish(ask(starts.prepare_send, member, assistant_id=assistant.pk).plan)

    record = UsageRecord.objects.get(purpose="answer")
    assert (record.user, record.assistant, record.assistant_name) == (
        member,
        assistant,
        "SQL reviewer",
    )


# --- Losing access ---------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("path", PATHS)
def test_a_stranger_cannot_start_a_conversation_with_it_by_id(path, team, catalogue):
    owner, _member, stranger, group = team
    assistant = make_assistant(owner, visibility=Visibility.GROUPS, groups=[group])

    with pytest.raises(Refused, match="not available to you"):
        ask(path, stranger, assistant_id=assistant.pk)

    assert not Conversation.objects.filter(owner=stranger).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("path", PATHS)
def test_a_member_who_leaves_the_group_reads_on_but_cannot_continue(path, team, catalogue):
    owner, member, _stranger, group = team
    assistant = make_assistant(owner, visibility=Visibility.GROUPS, groups=[group])
    finish(ask(quicksend.prepare_send, member).plan)
    first = ask(path, member, assistant_id=assistant.pk)
    finish(first.plan)
    member.groups.remove(group)

    with pytest.raises(AssistantUnavailable, match="“SQL reviewer”"):
        ask(path, member, first.conversation.pk)

    assert Message.objects.filter(conversation=first.conversation).count() == 2


@pytest.mark.django_db
def test_the_page_offers_to_continue_without_the_assistant(client, team, catalogue):
    owner, member, _stranger, group = team
    assistant = make_assistant(owner, visibility=Visibility.GROUPS, groups=[group])
    first = ask(starts.prepare_send, member, assistant_id=assistant.pk)
    finish(first.plan)
    assistant.enabled = False
    assistant.save()
    client.force_login(member)

    page = client.get(reverse("conversation", args=[first.conversation.pk])).text
    assert "You can no longer use the assistant" in page
    assert "An answer." in page  # the old answers stay readable
    client.post(reverse("leave_assistant", args=[first.conversation.pk]))
    later = ask(starts.prepare_send, member, first.conversation.pk)

    assert later.plan.instructions == ""
    answers = Message.objects.filter(conversation=first.conversation, role="assistant")
    assert [m.assistant_id for m in answers] == [assistant.pk, None]
    page = client.get(reverse("conversation", args=[first.conversation.pk])).text
    assert "You can no longer use the assistant" not in page
    assert "SQL reviewer" in page  # the first answer still says who wrote it


@pytest.mark.django_db
def test_only_the_owner_of_a_conversation_can_unbind_its_assistant(client, team, catalogue):
    owner, member, stranger, _group = team
    assistant = make_assistant(owner, visibility=Visibility.TEAM)
    result = ask(starts.prepare_send, member, assistant_id=assistant.pk)
    client.force_login(stranger)

    response = client.post(reverse("leave_assistant", args=[result.conversation.pk]))

    assert response.status_code == 404
    assert Conversation.objects.get(pk=result.conversation.pk).assistant == assistant


@pytest.mark.django_db
def test_a_locked_model_the_user_may_not_use_refuses_in_words_naming_the_assistant(team, catalogue):
    owner, member, _stranger, _group = team
    restricted = model("sim-reasoner")
    restricted.groups.add(Group.objects.create(name="Reasoners"))
    assistant = make_assistant(
        owner, visibility=Visibility.TEAM, model=restricted, lock_options=True
    )

    with pytest.raises(Refused, match="“SQL reviewer” answers with a model"):
        ask(starts.prepare_send, member, assistant_id=assistant.pk)


# --- Over the socket --------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_over_the_socket_the_assistant_speaks_and_strangers_are_refused(gateway, team):
    owner, member, stranger, group = team
    assistant = await sync_to_async(make_assistant)(
        owner, visibility=Visibility.GROUPS, groups=[group]
    )

    socket = await open_socket(member)
    await send(
        socket, action="send", conversation="", text="SELECT *?", assistant=str(assistant.pk)
    )
    frames = await receive_until(socket, final_answer)
    await socket.disconnect()
    assert "SQL reviewer" in visible_text(frames[-1])
    (request,) = gateway.requests.streamed()
    assert request["instructions"] == "Review SQL against our style guide."

    socket = await open_socket(stranger)
    await send(
        socket, action="send", conversation="", text="Let me in", assistant=str(assistant.pk)
    )
    frames = await receive_until(socket, lambda frame: "not available to you" in frame)
    await socket.disconnect()
    assert await sync_to_async(Conversation.objects.filter(owner=stranger).count)() == 0
    assert len(gateway.requests.streamed()) == 1


# --- The form ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_form_saves_an_assistant_with_its_starters(client, user, catalogue):
    client.force_login(user)

    response = client.post(
        reverse("assistant_new"),
        {
            "name": "翻译助手",
            "instructions": "Translate into Chinese.",
            "model": model("sim-chat").pk,
            "visibility": Visibility.PRIVATE,
            "starter_1": "Translate this email",
            "starter_3": "翻译这段话",
        },
        follow=True,
    )

    assistant = Assistant.objects.get()
    assert "Saved “翻译助手”" in response.text
    assert (assistant.owner, assistant.starter_prompts, assistant.version) == (
        user,
        ["Translate this email", "翻译这段话"],
        1,
    )


@pytest.mark.django_db
def test_oversized_instructions_are_refused_and_kept_in_the_form(client, user, catalogue):
    client.force_login(user)
    typed = "规" * 8001

    response = client.post(
        reverse("assistant_new"),
        {"name": "Long", "instructions": typed, "visibility": Visibility.PRIVATE},
    )

    assert "at most 8000 characters" in response.text
    assert typed in response.text
    assert not Assistant.objects.exists()


@pytest.mark.django_db
def test_a_model_outside_the_users_groups_is_refused_clearly(client, user, catalogue):
    restricted = model("sim-reasoner")
    restricted.groups.add(Group.objects.create(name="Reasoners"))
    client.force_login(user)

    response = client.post(
        reverse("assistant_new"),
        {"name": "Sneaky", "model": restricted.pk, "visibility": Visibility.PRIVATE},
    )

    assert "That model is not available to you." in response.text
    assert not Assistant.objects.exists()


@pytest.mark.django_db
def test_groups_must_be_the_users_own_and_given_for_group_visibility(client, user, catalogue):
    mine, theirs = Group.objects.create(name="Mine"), Group.objects.create(name="Theirs")
    user.groups.add(mine)
    client.force_login(user)
    fields = {"name": "Shared", "visibility": Visibility.GROUPS}

    assert "Choose at least one group" in client.post(reverse("assistant_new"), fields).text
    refused = client.post(reverse("assistant_new"), {**fields, "groups": [theirs.pk]})
    assert "Select a valid choice" in refused.text
    client.post(reverse("assistant_new"), {**fields, "groups": [mine.pk]})
    assert list(Assistant.objects.get().groups.all()) == [mine]


@pytest.mark.django_db
def test_an_icon_that_is_not_an_image_is_refused_and_nothing_saved(client, user, catalogue):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(user)

    response = client.post(
        reverse("assistant_new"),
        {
            "name": "Iconic",
            "visibility": Visibility.PRIVATE,
            "icon_upload": SimpleUploadedFile("icon.png", b"not a png at all"),
        },
    )

    assert "This file is not a PNG, JPEG, WebP or GIF image." in response.text
    assert not Assistant.objects.exists()


@pytest.mark.django_db
def test_an_uploaded_icon_is_stored_as_a_small_png_and_served(client, user, catalogue):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(user)
    client.post(
        reverse("assistant_new"),
        {
            "name": "Iconic",
            "visibility": Visibility.PRIVATE,
            "icon_upload": SimpleUploadedFile("me.jpg", image_bytes("JPEG", 600, 400)),
        },
    )
    assistant = Assistant.objects.get()

    response = client.get(reverse("assistant_icon", args=[assistant.pk]))

    from io import BytesIO

    from PIL import Image

    served = Image.open(BytesIO(b"".join(response.streaming_content)))
    assert (response["Content-Type"], served.format, served.size) == (
        "image/png",
        "PNG",
        (128, 128),
    )


@pytest.mark.django_db
def test_a_locked_assistants_conversation_keeps_its_picker_locked(client, team, catalogue):
    owner, member, _stranger, _group = team
    assistant = make_assistant(
        owner, visibility=Visibility.TEAM, model=model("sim-reasoner"), lock_options=True
    )
    result = ask(starts.prepare_send, member, assistant_id=assistant.pk)
    finish(result.plan)
    client.force_login(member)

    page = client.get(reverse("conversation", args=[result.conversation.pk])).text

    assert 'id="composer-model" name="model" class="model-picker" disabled' in page
    assert 'name="assistant"' not in page  # bound already: only a new chat sends it


@pytest.mark.django_db
def test_an_oversized_icon_is_refused_with_its_size_and_the_limit(client, user, catalogue):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(user)

    response = client.post(
        reverse("assistant_new"),
        {
            "name": "Big face",
            "visibility": Visibility.PRIVATE,
            "icon_upload": SimpleUploadedFile("big.png", b"\x89PNG" + b"0" * (1024 * 1024 + 1)),
        },
    )

    assert "This icon is larger than 1 MB. Choose a smaller image." in response.text
    assert 'value="Big face"' in response.text  # what was typed stays
    assert not Assistant.objects.exists()


@pytest.mark.django_db
def test_a_group_an_admin_added_survives_the_owners_next_save(client, team, catalogue):
    """Seen in review: the form offered only the owner's groups, so saving dropped it."""
    owner, _member, _stranger, group = team
    elsewhere = Group.objects.create(name="Support")
    assistant = make_assistant(owner, visibility=Visibility.GROUPS, groups=[group, elsewhere])
    client.force_login(owner)

    page = client.get(reverse("assistant_edit", args=[assistant.pk])).text
    client.post(
        reverse("assistant_edit", args=[assistant.pk]),
        {
            "name": "SQL reviewer",
            "instructions": "Review SQL against our style guide.",
            "visibility": Visibility.GROUPS,
            "groups": [group.pk, elsewhere.pk],
        },
    )

    assert "Support" in page
    assert set(assistant.groups.all()) == {group, elsewhere}
