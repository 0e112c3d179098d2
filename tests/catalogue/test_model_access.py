"""Which models each group may use: the picker, the socket, group defaults and the admin.

A catalogue entry limited to groups is offered to, and accepted from, their members
only; an entry limited to none is open to everyone.
"""

from __future__ import annotations

import re

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group
from django.urls import reverse

from conversations.models import Conversation, Message, ModelChoice, Quota
from conversations.pipeline import starts
from tests.support.chat import final_answer, open_socket, receive_until, send
from tests.support.direct_turns import (
    SEND_STATEMENTS,
    conversation_with_turns,
    finish,
    send_counting_statements,
)

REFUSED = "Sim Chat is not available to you; pick another model."
LOST = "Sim Chat is no longer available; this conversation continues on Sim Mini."
CATALOGUE = reverse("admin:conversations_modelchoice_changelist")


def model(upstream_id: str) -> ModelChoice:
    return ModelChoice.objects.get(upstream_id=upstream_id)


def limit(upstream_id: str, *groups: Group) -> ModelChoice:
    """Limit a catalogue entry to `groups`; make Sim Mini the site's default."""
    ModelChoice.objects.update(is_default=False)
    ModelChoice.objects.filter(upstream_id="sim-mini").update(is_default=True)
    entry = model(upstream_id)
    entry.groups.set(groups)
    return entry


def picker(html: str) -> dict[str, bool]:
    """Return the picker's options by label, each with whether it is selected."""
    select = html[html.index('<select id="composer-model"') :]
    select = select[: select.index("</select>")]
    return {
        label: bool(selected)
        for selected, label in re.findall(
            r'<option value="\d+"( selected)?>([^<]+)</option>', select
        )
    }


def selected(html: str) -> str:
    return next(label for label, chosen in picker(html).items() if chosen)


@pytest.fixture
def research(db) -> Group:
    return Group.objects.create(name="Research")


@pytest.fixture
def sales(db) -> Group:
    return Group.objects.create(name="Sales")


# --- The composer's picker ----------------------------------------------------------


def test_picker_leaves_out_a_model_limited_to_other_groups(client, user, catalogue, research):
    limit("sim-chat", research)
    client.force_login(user)

    offered = picker(client.get(reverse("chat")).content.decode())

    assert "Sim Chat" not in offered and "Sim Mini" in offered


def test_picker_offers_a_limited_model_to_its_groups_members(client, user, catalogue, research):
    limit("sim-chat", research)
    user.groups.add(research)
    client.force_login(user)

    assert "Sim Chat" in picker(client.get(reverse("chat")).content.decode())


def test_options_of_a_model_limited_to_other_groups_are_not_shown(
    client, user, catalogue, research
):
    chat = limit("sim-chat", research)
    chat.supports_web_search = True
    chat.save()
    client.force_login(user)

    options = client.get(reverse("composer_options"), {"model": chat.pk}).content.decode()

    assert "Search the web" not in options


def test_new_chat_starts_on_the_groups_default(client, user, catalogue, research):
    limit("sim-chat", research)
    model("sim-chat").default_for_groups.add(research)
    user.groups.add(research)
    client.force_login(user)

    assert selected(client.get(reverse("chat")).content.decode()) == "Sim Chat"


def test_a_member_of_several_groups_gets_the_default_highest_in_the_list(
    client, user, catalogue, research, sales
):
    ModelChoice.objects.filter(upstream_id="sim-chat").update(position=1)
    ModelChoice.objects.filter(upstream_id="sim-mini").update(position=2)
    model("sim-mini").default_for_groups.add(research)
    model("sim-chat").default_for_groups.add(sales)
    user.groups.add(research, sales)
    client.force_login(user)

    assert selected(client.get(reverse("chat")).content.decode()) == "Sim Chat"
    assert ModelChoice.objects.default_for(user).label == "Sim Chat"


def test_people_outside_the_group_keep_the_sites_default(
    client, user, other_user, catalogue, research
):
    model("sim-chat").default_for_groups.add(research)
    limit("sim-chat")
    user.groups.add(research)
    client.force_login(other_user)

    assert selected(client.get(reverse("chat")).content.decode()) == "Sim Mini"


@pytest.mark.django_db
def test_a_turn_naming_no_model_starts_on_the_groups_default(user, catalogue, research):
    limit("sim-chat")
    model("sim-chat").default_for_groups.add(research)
    user.groups.add(research)

    result = starts.prepare_send(
        user=user,
        conversation_id=None,
        text="Hello",
        model_id=None,
        instructions=None,
        worker_channel="worker-1",
    )

    assert result.conversation.model.label == "Sim Chat"


@pytest.mark.django_db
def test_checking_the_groups_costs_a_send_no_statement(user, catalogue, research):
    limit("sim-chat", research)
    model("sim-mini").default_for_groups.add(research)
    user.groups.add(research)
    Quota.objects.create(user=user, tokens_per_day=1_000_000, tokens_per_month=10_000_000)
    conversation_id = conversation_with_turns(user)

    _result, statements = send_counting_statements(user, conversation_id)

    assert len(statements) == SEND_STATEMENTS, "\n".join(statements)


@pytest.mark.django_db
def test_a_conversation_on_a_lost_model_shows_the_default_in_the_picker(
    client, user, catalogue, research
):
    limit("sim-chat", research)
    conversation = Conversation.objects.create(owner=user, model=model("sim-chat"))
    client.force_login(user)

    page = client.get(reverse("conversation", args=[conversation.pk])).content.decode()

    assert selected(page) == "Sim Mini" and "Sim Chat" not in picker(page)


# --- The socket ---------------------------------------------------------------------


@sync_to_async
def limited(upstream_id: str, group_name: str, *, member=None) -> int:
    group, _ = Group.objects.get_or_create(name=group_name)
    if member is not None:
        member.groups.add(group)
    return limit(upstream_id, group).pk


@sync_to_async
def leave(user, group_name: str) -> None:
    user.groups.remove(Group.objects.get(name=group_name))


@sync_to_async
def model_id(upstream_id: str) -> int:
    return model(upstream_id).pk


@sync_to_async
def messages() -> list[Message]:
    return list(Message.objects.order_by("pk"))


@sync_to_async
def conversation_model(conversation_id: int) -> str:
    return Conversation.objects.get(pk=conversation_id).model.label


async def first_turn(socket, model: int) -> list[Message]:
    await send(socket, action="send", conversation="", text="Hello", model=str(model))
    await receive_until(socket, final_answer)
    return await messages()


@pytest.mark.django_db(transaction=True)
async def test_send_naming_a_model_of_other_groups_is_refused_by_name(gateway, user):
    chat = await limited("sim-chat", "Research")
    socket = await open_socket(user)

    await send(socket, action="send", conversation="", text="Hello", model=str(chat))
    frames = await receive_until(socket, lambda frame: "composer-error" in frame)

    assert REFUSED in frames[-1]
    assert "Sim Chat" not in picker(frames[-1]) and "Sim Mini" in picker(frames[-1])
    assert await messages() == []
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_regenerate_naming_a_model_of_other_groups_is_refused(gateway, user):
    chat = await limited("sim-chat", "Research")
    socket = await open_socket(user)
    _question, answer = await first_turn(socket, await model_id("sim-mini"))

    await send(socket, action="regenerate", message=str(answer.pk), model=str(chat))
    frames = await receive_until(socket, lambda frame: "composer-error" in frame)

    assert REFUSED in frames[-1]
    assert len(await messages()) == 2
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_member_chats_with_a_model_limited_to_their_group(gateway, user):
    chat = await limited("sim-chat", "Research", member=user)
    socket = await open_socket(user)

    _question, answer = await first_turn(socket, chat)

    assert answer.status == "complete" and answer.model_name == "sim-chat"
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_conversation_whose_model_the_user_lost_continues_with_a_notice(gateway, user):
    chat = await limited("sim-chat", "Research", member=user)
    socket = await open_socket(user)
    question, _answer = await first_turn(socket, chat)
    await leave(user, "Research")

    # The page's picker now shows the user's default (see the picker test above).
    conversation = str(question.conversation_id)
    mini = str(await model_id("sim-mini"))
    await send(socket, action="send", conversation=conversation, text="More", model=mini)
    frames = await receive_until(socket, lambda frame: "turn-accepted" in frame)
    await receive_until(socket, final_answer)

    assert LOST in frames[-1]
    assert await conversation_model(question.conversation_id) == "Sim Mini"
    assert (await messages())[-1].model_name == "sim-mini"
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_an_edit_in_a_conversation_on_a_lost_model_continues_with_a_notice(gateway, user):
    chat = await limited("sim-chat", "Research", member=user)
    socket = await open_socket(user)
    question, _answer = await first_turn(socket, chat)
    await leave(user, "Research")

    await send(socket, action="edit", message=str(question.pk), text="Hello again")
    frames = await receive_until(socket, lambda frame: LOST in frame)
    await receive_until(socket, final_answer)

    assert 'class="notice"' in frames[-1]
    assert (await messages())[-1].model_name == "sim-mini"
    await socket.disconnect()


# --- The admin ----------------------------------------------------------------------


def change_form(entry: ModelChoice, **overrides) -> dict:
    return {
        "label": entry.label,
        "upstream_id": entry.upstream_id,
        "enabled": "on",
        "position": str(entry.position),
        "reasoning_efforts": "",
        "default_reasoning_effort": "",
        "price_input": "0",
        "price_cached_input": "0",
        "price_output": "0",
        "context_mode": "auto",
        **overrides,
    }


def test_models_list_shows_each_models_groups(admin_client, catalogue, research, sales):
    limit("sim-chat", research, sales)

    page = admin_client.get(CATALOGUE).content.decode()

    row = page[page.index("Sim Chat") :]
    assert "Research, Sales" in row[: row.index("</tr>")]
    row = page[page.index("Sim Mini") :]
    assert "everyone" in row[: row.index("</tr>")]


def test_change_page_limits_a_model_to_groups_with_a_default(admin_client, catalogue, research):
    chat = model("sim-chat")
    url = reverse("admin:conversations_modelchoice_change", args=[chat.pk])
    fields = {"groups": [research.pk], "default_for_groups": [research.pk]}

    response = admin_client.post(url, change_form(chat, **fields))

    assert response.status_code == 302
    assert list(chat.groups.all()) == [research]
    assert list(research.default_models.all()) == [chat]


def test_change_page_refuses_a_default_for_a_group_that_may_not_use_the_model(
    admin_client, catalogue, research, sales
):
    chat = model("sim-chat")
    url = reverse("admin:conversations_modelchoice_change", args=[chat.pk])
    fields = {"groups": [research.pk], "default_for_groups": [sales.pk]}

    response = admin_client.post(url, change_form(chat, **fields))

    assert "Members of Sales may not use this model" in response.content.decode()
    assert not chat.groups.exists()


def test_group_page_lists_the_models_its_members_may_use(admin_client, catalogue, research, sales):
    limit("sim-chat", research)
    model("sim-chat").default_for_groups.add(research)
    url = reverse("admin:auth_group_change", args=[research.pk])

    research_page = admin_client.get(url).content.decode()
    sales_page = admin_client.get(reverse("admin:auth_group_change", args=[sales.pk]))

    assert "Sim Chat (default for members)" in research_page and "Sim Mini" in research_page
    assert "Sim Chat" not in sales_page.content.decode()


@pytest.mark.django_db
def test_a_model_limited_to_another_group_is_refused_from_the_next_turn(user, catalogue, research):
    first = starts.prepare_send(**sending(user, model("sim-chat").pk))  # access read, and kept
    finish(first.plan)

    limit("sim-chat", research)

    with pytest.raises(starts.Refused, match=REFUSED):
        starts.prepare_send(**sending(user, model("sim-chat").pk, first.conversation.pk))


@pytest.mark.django_db
def test_joining_the_group_opens_its_model_from_the_next_turn(user, catalogue, research):
    limit("sim-chat", research)
    with pytest.raises(starts.Refused, match=REFUSED):
        starts.prepare_send(**sending(user, model("sim-chat").pk))

    user.groups.add(research)

    assert starts.prepare_send(**sending(user, model("sim-chat").pk)).plan.model == "sim-chat"


def sending(user, model_id: int, conversation_id: int | None = None) -> dict:
    return {
        "user": user,
        "conversation_id": conversation_id,
        "text": "Hello",
        "model_id": model_id,
        "instructions": None,
        "worker_channel": "worker-1",
    }
