"""Conversations and their messages: a tree of turns per conversation."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from conversations.models.catalogue import ModelChoice


class ConversationQuerySet(models.QuerySet):
    def for_user(self, user) -> ConversationQuerySet:
        """Return the conversations `user` owns: the one way views and consumers fetch them."""
        if not user.is_authenticated or not user.is_active:
            return self.none()
        return self.filter(owner=user)

    def for_member(self, user) -> ConversationQuerySet:
        """Return the conversations `user` owns or is a member of: what they may read,
        write in, stop, regenerate and branch. Managing one stays `for_user`'s."""
        if not user.is_authenticated or not user.is_active:
            return self.none()
        joined = ConversationMember.objects.filter(user=user).values("conversation_id")
        return self.filter(models.Q(owner=user) | models.Q(pk__in=joined))

    def archived(self) -> ConversationQuerySet:
        return self.filter(archived=True)


@dataclass(frozen=True)
class Branch:
    """The messages of a conversation's branch on show, root first.

    `alternatives` maps each message's id to the ids of the messages at its place in
    the tree (edits and regenerations), itself included, oldest first.
    """

    messages: list[Message]
    alternatives: dict[int, list[int]]


def keep_groups(collector, field, sub_objs, using) -> None:
    """`Conversation.owner`'s on_delete: a deleted owner's group conversations pass to
    their first active member, who is no longer a member but the owner; the others go
    with the owner (CASCADE). The group's words belong to all of its people.

    `groups.membership.record_departures` (pre_delete) writes the audit lines; nothing
    is written here, because the admin's delete confirmation collects without deleting.
    """
    leaving = {user.pk for user in collector.data.get(field.related_model, ())}
    rest = []
    for conversation in sub_objs:
        heir = heir_of(conversation, leaving) if conversation.is_group else None
        if heir is None:
            rest.append(conversation)
            continue
        collector.add_field_update(field, heir.user, [conversation])
        collector.collect([heir], source=field.model, nullable=False, fail_on_restricted=False)
        if not conversation.members.exclude(pk=heir.pk).exists():
            collector.add_field_update(
                conversation._meta.get_field("is_group"), False, [conversation]
            )
    if rest:
        models.CASCADE(collector, field, rest, using)


def heir_of(conversation: Conversation, leaving: set[int]) -> ConversationMember | None:
    """Return the membership of who takes over a group whose owner is deleted: the
    longest-standing active member not deleted with them."""
    return (
        conversation.members.filter(user__is_active=True)
        .exclude(user_id__in=leaving)
        .select_related("user")
        .order_by("invited_at", "pk")
        .first()
    )


class AnswerMode(models.TextChoices):
    """When the model answers in a group conversation (alone, it answers every message)."""

    AUTO = "auto", _("every message while two of you, else only when mentioned")
    EVERY = "every", _("every message")
    MENTIONED = "mentioned", _("only when mentioned")


class Conversation(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=keep_groups,
        related_name="conversations",
    )
    title = models.CharField(verbose_name=_("title"), max_length=200, blank=True)
    model = models.ForeignKey(
        ModelChoice, verbose_name=_("model"), on_delete=models.SET_NULL, null=True, blank=True
    )
    instructions = models.TextField(verbose_name=_("instructions"), blank=True)
    # The assistant the conversation was started with: its instructions go with every
    # turn (`plans.turn_instructions`) while the owner may still use it.
    assistant = models.ForeignKey(
        "Assistant",
        verbose_name=_("assistant"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="conversations",
    )
    # Whether the owner's custom instructions (`UserPreference.about_me`, `answer_style`)
    # go with this conversation's turns; the owner can switch them off per conversation.
    custom_instructions = models.BooleanField(
        verbose_name=_("use my custom instructions"), default=True
    )
    archived = models.BooleanField(verbose_name=_("archived"), default=False)
    # Whether the conversation has members (`ConversationMember`), kept by
    # `groups/membership.py`, so a turn knows it without another query.
    is_group = models.BooleanField(verbose_name=_("group conversation"), default=False)
    answer_mode = models.CharField(
        verbose_name=_("the model answers"),
        max_length=12,
        choices=AnswerMode.choices,
        default=AnswerMode.AUTO,
    )
    pinned = models.BooleanField(verbose_name=_("pinned"), default=False)
    # The last message of the branch on show: edits and regenerations fork the tree, and
    # the conversation reopens on the branch the user last looked at.
    current_leaf = models.ForeignKey(
        "Message",
        verbose_name=_("current leaf"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(verbose_name=_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(
        verbose_name=_("updated at"), default=timezone.now, help_text=_("Last activity.")
    )

    objects = ConversationQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at", "-pk"]
        indexes = [
            models.Index(fields=["owner", "archived", "-updated_at"], name="conversation_sidebar"),
        ]

    def __str__(self) -> str:
        return self.title or _("Conversation %(number)s") % {"number": self.pk}

    def toggle_pinned(self) -> None:
        self.pinned = not self.pinned
        self.save(update_fields=["pinned"])

    def toggle_archived(self) -> None:
        self.archived = not self.archived
        self.save(update_fields=["archived"])

    def rename(self, title: str) -> None:
        """Save a title the user typed, cut to the column's length.

        The caller checks that there is one: an empty title would show the numbered
        default, which the user did not ask for.
        """
        self.title = title[: self._meta.get_field("title").max_length]
        self.save(update_fields=["title"])

    def visible_branch(
        self, *, attachments: bool = True, fields: tuple[str, ...] | None = None
    ) -> list[Message]:
        """Return the messages of the branch on show, root first (see `branch_on_show`)."""
        return self.branch_on_show(attachments=attachments, fields=fields).messages

    def branch_on_show(
        self, *, attachments: bool = True, fields: tuple[str, ...] | None = None
    ) -> Branch:
        """Return the branch on show, root first, with the alternatives at each place.

        The branch runs through `current_leaf` (the one the user last chose or added to)
        and, below it or where none is set, through the newest child at each fork.
        `Branch.alternatives` gives each message the ids of the messages at its place,
        oldest first, for the branch switcher. One query, then a walk in memory; a
        second one for the messages' images unless `attachments` is false (a caller
        that needs none). `fields` limits the columns loaded, for a caller that reads
        only those: the rows of a long conversation cost more to build than to fetch.
        """
        messages = self.messages.order_by("created_at", "pk")
        if attachments:
            messages = messages.prefetch_related("attachments")
        if fields is not None:
            messages = messages.only("pk", "parent_id", "created_at", *fields)
        return self.branch_among(messages)

    def branch_among(self, messages: Iterable[Message]) -> Branch:
        """Return the branch on show among all of this conversation's `messages`, which
        come oldest first (`branch_on_show` reads them; a caller may have read them)."""
        children: dict[int | None, list[Message]] = {}
        by_id: dict[int, Message] = {}
        for message in messages:
            children.setdefault(message.parent_id, []).append(message)
            by_id[message.pk] = message
        branch: list[Message] = []
        node = by_id.get(self.current_leaf_id) if self.current_leaf_id else None
        while node is not None:
            branch.append(node)
            node = by_id.get(node.parent_id)
        branch.reverse()
        if not branch and children.get(None):
            branch.append(children[None][-1])
        while branch and children.get(branch[-1].pk):
            branch.append(children[branch[-1].pk][-1])
        alternatives = {
            message.pk: [sibling.pk for sibling in children[message.parent_id]]
            for message in branch
        }
        return Branch(branch, alternatives)

    def newest_leaf_under(self, message: Message) -> Message:
        """Return the end of the branch below `message`, following the newest children."""
        node = message
        while (child := node.children.order_by("-created_at", "-pk").first()) is not None:
            node = child
        return node


class Message(models.Model):
    """One turn's message. Messages form a tree: edits and regenerations are siblings."""

    class Role(models.TextChoices):
        USER = "user", _("User")
        ASSISTANT = "assistant", _("Assistant")

    class Status(models.TextChoices):
        STREAMING = "streaming", _("Streaming")
        COMPLETE = "complete", _("Complete")
        INCOMPLETE = "incomplete", _("cut off")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("stopped")
        INTERRUPTED = "interrupted", _("Interrupted")

    conversation = models.ForeignKey(
        Conversation,
        verbose_name=_("conversation"),
        on_delete=models.CASCADE,
        related_name="messages",
    )
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="children",
    )
    role = models.CharField(verbose_name=_("role"), max_length=16, choices=Role.choices)
    # Who wrote a question (a group's member, or the owner); empty for answers and for
    # questions from before groups, which are the owner's.
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("author"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    text = models.TextField(verbose_name=_("text"), blank=True)
    # The text's sanitised HTML, stored when the message is finished so pages read it
    # instead of rendering it again; rendered_version says which renderer made it, and
    # an older (or missing) version is rendered again lazily when a page reads it.
    rendered_html = models.TextField(verbose_name=_("rendered HTML"), blank=True)
    rendered_version = models.PositiveSmallIntegerField(
        verbose_name=_("renderer version"), null=True, blank=True
    )
    status = models.CharField(
        verbose_name=_("status"), max_length=16, choices=Status.choices, default=Status.COMPLETE
    )
    error = models.TextField(
        verbose_name=_("error"), blank=True, help_text=_("What went wrong, in words for the user.")
    )
    error_code = models.CharField(verbose_name=_("error code"), max_length=40, blank=True)
    # What the gateway itself said when the answer failed (redacted): for staff, not users.
    error_detail = models.TextField(
        verbose_name=_("error detail"),
        blank=True,
        help_text=_("What the model service said, for administrators."),
    )
    # Notes the bubble shows about how the answer was made, as codes with their numbers
    # ({"code": "turns_left_out", "count": 3}), translated when displayed.
    notes = models.JSONField(verbose_name=_("notes"), default=list, blank=True)
    model_name = models.CharField(verbose_name=_("model name"), max_length=255, blank=True)
    # The assistant an answer was written as, and which version of its instructions.
    assistant = models.ForeignKey(
        "Assistant",
        verbose_name=_("assistant"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    assistant_version = models.PositiveIntegerField(
        verbose_name=_("assistant version"), null=True, blank=True
    )
    # Gateway ids have no length a gateway cannot exceed (LiteLLM's are ~430 characters).
    response_id = models.TextField(verbose_name=_("response id"), blank=True)
    previous_response_id = models.TextField(verbose_name=_("previous response id"), blank=True)
    # Output items replayed as input when the gateway keeps nothing (store=false).
    replay_items = models.JSONField(verbose_name=_("replay items"), default=list, blank=True)
    reasoning_effort = models.CharField(
        verbose_name=_("reasoning effort"), max_length=16, blank=True
    )
    reasoning_summary = models.TextField(verbose_name=_("reasoning summary"), blank=True)
    citations = models.JSONField(verbose_name=_("citations"), default=list, blank=True)
    tool_calls = models.JSONField(verbose_name=_("tool calls"), default=list, blank=True)
    web_searches = models.JSONField(verbose_name=_("web searches"), default=list, blank=True)
    # Per-message choices from the composer: web search on, reasoning summary wanted.
    web_search = models.BooleanField(verbose_name=_("web search"), default=False)
    reasoning_summary_mode = models.CharField(
        verbose_name=_("reasoning summary mode"), max_length=16, blank=True
    )
    # What a question's attachments cost as they were sent: a later turn that continues
    # upstream sends them no more, but the gateway still reads (and bills) them.
    attachment_tokens = models.PositiveIntegerField(verbose_name=_("attachment tokens"), default=0)
    input_tokens = models.PositiveIntegerField(
        verbose_name=_("input tokens"), null=True, blank=True
    )
    output_tokens = models.PositiveIntegerField(
        verbose_name=_("output tokens"), null=True, blank=True
    )
    reasoning_tokens = models.PositiveIntegerField(
        verbose_name=_("reasoning tokens"), null=True, blank=True
    )
    created_at = models.DateTimeField(verbose_name=_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(verbose_name=_("updated at"), auto_now=True)

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [
            models.Index(fields=["conversation", "created_at"], name="message_transcript"),
            models.Index(fields=["status", "updated_at"], name="message_status"),
        ]

    def __str__(self) -> str:
        return _("%(role)s message %(number)s") % {
            "role": self.get_role_display(),
            "number": self.pk,
        }

    @property
    def is_streaming(self) -> bool:
        return self.status == self.Status.STREAMING


class ConversationMember(models.Model):
    """A teammate the owner invited into a conversation (see `groups/membership.py`)."""

    conversation = models.ForeignKey(
        Conversation,
        verbose_name=_("conversation"),
        on_delete=models.CASCADE,
        related_name="members",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("member"),
        on_delete=models.CASCADE,
        related_name="memberships",
    )
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("invited by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    invited_at = models.DateTimeField(verbose_name=_("invited at"), default=timezone.now)
    # The first time the member opened the conversation (the audit log says so too).
    joined_at = models.DateTimeField(verbose_name=_("joined at"), null=True, blank=True)

    class Meta:
        verbose_name = _("conversation member")
        verbose_name_plural = _("conversation members")
        ordering = ["invited_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "user"], name="member_once"),
        ]
        indexes = [models.Index(fields=["user", "conversation"], name="member_sidebar")]

    def __str__(self) -> str:
        return f"{self.user} in {self.conversation_id}"
