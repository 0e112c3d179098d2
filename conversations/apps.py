from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConversationsConfig(AppConfig):
    name = "conversations"
    verbose_name = _("Conversations")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model, user_logged_in, user_logged_out
        from django.db.models.signals import post_delete, post_save, pre_delete, pre_save

        from conversations import preferences
        from conversations.assistants import handover
        from conversations.attachments import images
        from conversations.catalogue import access as model_access
        from conversations.groups import membership
        from conversations.models import Attachment
        from conversations.personal import instructions as personal
        from conversations.pipeline import access
        from conversations.sharing import retention
        from conversations.usage import limits

        # Cascades from a message, conversation or user deletion reach this too.
        post_delete.connect(images.delete_files, sender=Attachment, dispatch_uid="attachment_files")
        user_model = get_user_model()
        # Whatever deletes a user (admin, shell, management command), their
        # conversations are frozen for review first, when the retention setting says so.
        pre_delete.connect(
            retention.retain_deleted_users_conversations,
            sender=user_model,
            dispatch_uid="retain_deleted_users_conversations",
        )
        # Their assistants and shared prompts pass to a staff member, never lost silently.
        pre_delete.connect(
            handover.hand_over_deleted_users_things,
            sender=user_model,
            dispatch_uid="hand_over_deleted_users_things",
        )
        # A deleted owner's groups pass to a member (`chats.keep_groups`): say so in the
        # groups' audit log, as for a deleted member.
        pre_delete.connect(
            membership.record_departures, sender=user_model, dispatch_uid="group_departures"
        )
        post_save.connect(access.revoke_on_deactivate, sender=user_model, dispatch_uid="revoke")
        post_delete.connect(access.revoke_on_delete, sender=user_model, dispatch_uid="revoke_del")
        # A socket is authenticated once, when it opens: end it with its session.
        user_logged_out.connect(access.end_session_on_logout, dispatch_uid="end_session")
        pre_save.connect(access.note_password_change, sender=user_model, dispatch_uid="note_pw")
        post_save.connect(
            access.end_sessions_on_password_change, sender=user_model, dispatch_uid="end_pw"
        )
        user_logged_in.connect(preferences.restore_language, dispatch_uid="restore_language")
        # Turn starts keep limits, model access and custom instructions per user: forget
        # them on every change.
        limits.watch_changes()
        model_access.watch_changes()
        personal.watch_changes()
