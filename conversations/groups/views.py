"""The members dialog of a conversation: invite, remove, leave, end the group, and when
the model answers. Views parse, authorise and render; `membership` does the work.

Only the owner manages members and settings (`for_user`); a member sees the list and
may leave (`for_member`). Every change tells the sockets concerned: the sidebars of
everyone in the group, and the removed member's tabs, which stop showing it at once.
"""

from __future__ import annotations

from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_POST

from conversations.groups import membership
from conversations.groups.people import group_people
from conversations.models import AnswerMode, Conversation
from conversations.params import form_text, query_text
from conversations.pipeline import broadcast

PAGE = "conversations/members.html"


def owned(request, pk: int) -> Conversation:
    """The user's own conversation `pk` (members manage nothing): 404 otherwise."""
    return get_object_or_404(Conversation.objects.for_user(request.user), pk=pk)


def joined(request, pk: int) -> Conversation:
    """A conversation the user owns or is a member of: 404 otherwise."""
    found = Conversation.objects.for_member(request.user).select_related("owner")
    return get_object_or_404(found, pk=pk)


def panel_context(request, conversation: Conversation, **extra) -> dict:
    people = group_people(conversation)
    is_owner = conversation.owner_id == request.user.pk
    return {
        "conversation": conversation,
        "people": list(people.values()),
        "owner_id": conversation.owner_id,
        "is_owner": is_owner,
        "groups": Group.objects.order_by("name") if is_owner else [],
        "answer_modes": AnswerMode.choices,
        **extra,
    }


def render_panel(request, conversation: Conversation, **extra):
    return render(request, f"{PAGE}#members_panel", panel_context(request, conversation, **extra))


@require_GET
def members_dialog(request, pk: int):
    conversation = joined(request, pk)
    return render(request, f"{PAGE}#members_dialog", panel_context(request, conversation))


@require_GET
def member_search(request, pk: int):
    """People the owner may invite, for the invite box."""
    conversation = owned(request, pk)
    query = query_text(request, "q")
    found = membership.candidates(conversation, query)
    context = {"conversation": conversation, "found": found, "query": query.strip()}
    return render(request, f"{PAGE}#candidates", context)


@require_POST
def invite_members(request, pk: int):
    """Invite one person (`user`) or a whole group (`group`)."""
    conversation = owned(request, pk)
    try:
        if group_id := form_text(request, "group"):
            group = Group.objects.filter(pk=_number(group_id)).first()
            if group is None:
                raise Http404("No such group.")
            membership.invite_group(conversation, request.user, group)
        else:
            users = get_user_model().objects.filter(pk=_number(form_text(request, "user")))
            if not users:
                raise Http404("No such user.")
            membership.invite(conversation, request.user, users)
    except membership.MembershipError as error:
        return render_panel(request, conversation, error=error.user_message)
    tell_everyone(conversation)
    return render_panel(request, conversation)


@require_POST
def remove_member(request, pk: int, user_id: int):
    conversation = owned(request, pk)
    if membership.remove(conversation, request.user, user_id):
        tell_everyone(conversation, removed=[user_id])
    return render_panel(request, conversation)


@require_POST
def leave_conversation(request, pk: int):
    """A member leaves; the page goes to a new chat."""
    conversation = joined(request, pk)
    if conversation.owner_id == request.user.pk:
        raise Http404("The owner ends the group instead.")
    if membership.leave(conversation, request.user):
        tell_everyone(conversation, removed=[request.user.pk])
    response = HttpResponse()
    response["HX-Redirect"] = "/"
    return response


@require_POST
def end_group(request, pk: int):
    conversation = owned(request, pk)
    gone = membership.end_group(conversation, request.user)
    tell_everyone(conversation, removed=gone)
    return render_panel(request, conversation)


@require_POST
def set_answer_mode(request, pk: int):
    conversation = owned(request, pk)
    mode = form_text(request, "answer_mode")
    if mode not in AnswerMode.values:
        return render_panel(request, conversation, error=_unknown_mode())
    conversation.answer_mode = mode
    conversation.save(update_fields=["answer_mode"])
    tell_everyone(conversation)
    return render_panel(request, conversation, saved=True)


def tell_everyone(conversation: Conversation, *, removed: list[int] = ()) -> None:
    """Move the conversation in every sidebar of its people, and close it in the tabs of
    those `removed`: they no longer see it, not even an answer still streaming."""
    people = list(membership.member_ids(conversation.pk))
    for user_id in removed:
        async_to_sync(broadcast.removed_from_conversation)(user_id, conversation.pk)
    async_to_sync(broadcast.conversation_changed)(
        conversation.owner_id, conversation.pk, others=[*people, *removed]
    )


def _number(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise Http404("Not a number.") from None


def _unknown_mode() -> str:
    return gettext("Choose when the model answers.")
