"""Sharing and review: the site's sharing switch, every share link, and admin review.

Review reads any conversation, read-only, with the review permission; every read is
recorded in the audit log (see `audit`), as every read through a share link is.
"""

from __future__ import annotations

import datetime

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from conversations.admin.filters import CreatedBetweenFilter
from conversations.admin.mixins import ReadOnlyAdminMixin, ReviewPermissionMixin
from conversations.attachments import images as attachments
from conversations.attachments.serving import image_response
from conversations.models import (
    ConversationMember,
    Message,
    ModelChoice,
    ReviewedConversation,
    ShareLink,
    SharingPolicy,
    TranscriptAccess,
)
from conversations.sharing import links
from conversations.sharing.audit import record_access
from conversations.sharing.pages import render_transcript
from conversations.sharing.transcripts import review_transcript
from conversations.usage.periods import local_midnight

__all__ = ["ReviewedConversationAdmin", "ShareLinkAdmin", "SharingPolicyAdmin"]


@admin.register(SharingPolicy)
class SharingPolicyAdmin(admin.ModelAdmin):
    """The site-wide sharing switch: one row, edited in place, never added or deleted."""

    fields = ("mode",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        policy = SharingPolicy.load()
        return redirect(reverse("admin:conversations_sharingpolicy_change", args=[policy.pk]))


LINK_STATES = {"active": _("active"), "expired": _("expired"), "revoked": _("revoked")}


class LinkStateFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return tuple(LINK_STATES.items())

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "active":
            return queryset.open(now)
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ShareLink)
class ShareLinkAdmin(admin.ModelAdmin):
    """Every share link on the site, to find (paste a token into search) and revoke.

    The token itself is never shown: it opens the transcript, and reading transcripts
    is what the review permission and its audit trail are for.
    """

    list_display = (
        "conversation",
        "owner",
        "visibility",
        "state",
        "messages",
        "created_at",
        "snapshot_at",
        "expires_at",
        "revoked_at",
        "allow_downloads",
    )
    list_filter = (LinkStateFilter, "visibility", "allow_downloads")
    list_select_related = ("conversation__owner",)
    search_fields = ("=token", "conversation__title", "conversation__owner__username")
    fields = (*list_display, "revoked_by")
    readonly_fields = fields
    actions = ("revoke_links",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("owner"), ordering="conversation__owner__username")
    def owner(self, link: ShareLink) -> str:
        return link.conversation.owner.get_username()

    @admin.display(description=_("state"))
    def state(self, link: ShareLink) -> str:
        return LINK_STATES[link.state()]

    @admin.display(description=_("messages"))
    def messages(self, link: ShareLink) -> int:
        return len(link.message_ids)

    @admin.action(description=_("Revoke the selected links"), permissions=("change",))
    def revoke_links(self, request, queryset) -> None:
        revoked = 0
        for link in queryset.filter(revoked_at__isnull=True):
            links.revoke(link, by=request.user)
            self.log_change(request, link, "Revoked the link.")
            revoked += 1
        self.message_user(
            request,
            ngettext("Revoked %(count)d link.", "Revoked %(count)d links.", revoked)
            % {"count": revoked},
        )


class ActiveBetweenFilter(CreatedBetweenFilter):
    """Conversations with a message in the chosen days, both ends included."""

    title = _("activity")

    def queryset(self, request, queryset):
        first, last = self.days()
        if not (first or last):
            return queryset
        messages = Message.objects.all()
        if first:
            messages = messages.filter(created_at__gte=local_midnight(first))
        if last:
            messages = messages.filter(
                created_at__lt=local_midnight(last + datetime.timedelta(days=1))
            )
        return queryset.filter(pk__in=messages.values("conversation_id"))


class AnswerModelFilter(admin.SimpleListFilter):
    """The models that answered, by the name kept on each answer."""

    title = _("model")
    parameter_name = "answered_by"

    def lookups(self, request, model_admin):
        names = (
            Message.objects.exclude(model_name="")
            .order_by("model_name")
            .values_list("model_name", flat=True)
            .distinct()
        )
        # Shown by catalogue label, as people know them; filtered by the id answers keep.
        labels = dict(
            ModelChoice.objects.filter(upstream_id__in=names).values_list("upstream_id", "label")
        )
        return [(name, labels.get(name, name)) for name in names]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        answered = Message.objects.filter(model_name=self.value()).values("conversation_id")
        return queryset.filter(pk__in=answered)


@admin.register(ReviewedConversation)
class ReviewedConversationAdmin(ReviewPermissionMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Admin review: find any conversation and read it, read-only; every read is audited."""

    list_display = (
        "__str__",
        "owner",
        "member_count",
        "model",
        "message_count",
        "created_at",
        "updated_at",
    )
    list_filter = (
        ActiveBetweenFilter,
        ("owner", admin.RelatedOnlyFieldListFilter),
        AnswerModelFilter,
        "is_group",
        "archived",
    )
    list_select_related = ("owner", "model")
    search_fields = ("title", "owner__username", "messages__text")
    list_per_page = 50

    class Media:
        css = {"all": ["chatweb/usage.css"]}  # the date range filter's form

    def get_queryset(self, request):
        # A subquery, not Count("messages"): searching message text joins the messages
        # again, and a join's count would multiply by the number of matching messages.
        counts = (
            Message.objects.filter(conversation=OuterRef("pk"))
            .order_by()
            .values("conversation")
            .annotate(count=Count("pk"))
            .values("count")
        )
        members = (
            ConversationMember.objects.filter(conversation=OuterRef("pk"))
            .order_by()
            .values("conversation")
            .annotate(count=Count("pk"))
            .values("count")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                message_count=Coalesce(Subquery(counts), 0),
                member_count=Coalesce(Subquery(members), 0),
            )
        )

    @admin.display(description=_("members"), ordering="member_count")
    def member_count(self, conversation) -> int:
        return conversation.member_count

    @admin.display(description=_("messages"), ordering="message_count")
    def message_count(self, conversation) -> int:
        return conversation.message_count

    def changelist_view(self, request, extra_context=None):
        subtitle = gettext("Search by text, owner or title. Opening a transcript is recorded.")
        return super().changelist_view(request, {"subtitle": subtitle, **(extra_context or {})})

    def get_urls(self):
        image = self.admin_site.admin_view(self.image_view)
        name = "conversations_reviewedconversation"
        return [
            path("<path:object_id>/images/<int:pk>/", image, name=f"{name}_image"),
            path(
                "<path:object_id>/images/<int:pk>/thumb/",
                image,
                {"thumbnail": True},
                name=f"{name}_image_thumbnail",
            ),
            *super().get_urls(),
        ]

    def reviewed(self, request, object_id: str):
        if not self.has_view_permission(request):
            raise PermissionDenied
        conversation = self.get_object(request, unquote(object_id))
        if conversation is None:
            raise Http404("No such conversation.")
        return conversation

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """Show the transcript as its owner sees it, and record who looked."""
        conversation = self.reviewed(request, object_id)
        record_access(request, TranscriptAccess.Via.REVIEW, conversation=conversation)
        back = reverse("admin:conversations_reviewedconversation_changelist")
        if filters := request.GET.get("_changelist_filters"):
            back = f"{back}?{filters}"

        def image_url(pk: int, thumbnail: bool) -> str:
            name = "image_thumbnail" if thumbnail else "image"
            return reverse(
                f"admin:conversations_reviewedconversation_{name}", args=[conversation.pk, pk]
            )

        return render_transcript(
            request,
            review_transcript(conversation),
            image_url=image_url,
            downloads=True,
            error_details=True,  # what the gateway said, beside each failed answer
            review_back=back,
        )

    def image_view(self, request, object_id: str, pk: int, thumbnail: bool = False):
        conversation = self.reviewed(request, object_id)
        shown = set(conversation.messages.values_list("pk", flat=True))
        found = attachments.viewable(request.user, pk, shown_messages=shown)
        if found is None:
            raise Http404("No such image.")
        return image_response(found, thumbnail=thumbnail)
