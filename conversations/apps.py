from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConversationsConfig(AppConfig):
    name = "conversations"
    verbose_name = _("Conversations")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model, user_logged_in
        from django.db.models.signals import post_delete, post_save

        from conversations import access, attachments, preferences
        from conversations.models import Attachment

        # Cascades from a message, conversation or user deletion reach this too.
        post_delete.connect(
            attachments.delete_files, sender=Attachment, dispatch_uid="attachment_files"
        )
        user_model = get_user_model()
        post_save.connect(access.revoke_on_deactivate, sender=user_model, dispatch_uid="revoke")
        post_delete.connect(access.revoke_on_delete, sender=user_model, dispatch_uid="revoke_del")
        user_logged_in.connect(preferences.restore_language, dispatch_uid="restore_language")
