"""Permission rules several admin pages share."""

from __future__ import annotations

__all__ = ["REVIEW_PERMISSION", "ReadOnlyAdminMixin", "ReviewPermissionMixin"]

REVIEW_PERMISSION = "conversations.review_conversations"


class ReadOnlyAdminMixin:
    """Show the rows; let nobody add, change or delete them, superusers included.

    For records the app writes and the admin only reads: usage, the audit log, the
    conversations under review.
    """

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReviewPermissionMixin:
    """Open the page only to holders of the review permission, not the model's own.

    Reading other people's conversations is what the review permission (and its audit
    trail) is for; a model's "view" permission alone must not grant it.
    """

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.has_perm(REVIEW_PERMISSION)

    def has_module_permission(self, request) -> bool:
        return request.user.has_perm(REVIEW_PERMISSION)
