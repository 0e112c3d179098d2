from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "conversations"
    verbose_name = "Conversations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete

        from conversations import attachments
        from conversations.models import Attachment

        # Cascades from a message, conversation or user deletion reach this too.
        post_delete.connect(
            attachments.delete_files, sender=Attachment, dispatch_uid="attachment_files"
        )
