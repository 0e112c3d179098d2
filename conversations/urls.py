from django.urls import path

from conversations.assistants import transfer_views
from conversations.assistants import views as assistant_views
from conversations.attachments import views as attachment_views
from conversations.groups import views as group_views
from conversations.history import export_views
from conversations.history import views as chat_views
from conversations.personal import views as personal_views
from conversations.prompts import views as prompt_views
from conversations.sharing import views as share_views
from conversations.usage import views as usage_views

urlpatterns = [
    path("", chat_views.chat, name="chat"),
    path("favicon.ico", chat_views.favicon, name="favicon"),
    path("c/<int:pk>/", chat_views.conversation, name="conversation"),
    path("c/<int:pk>/earlier/", chat_views.earlier_messages, name="earlier_messages"),
    path("c/<int:pk>/rename/", chat_views.rename_conversation, name="rename_conversation"),
    path("c/<int:pk>/delete/", chat_views.delete_conversation, name="delete_conversation"),
    path("c/<int:pk>/pin/", chat_views.pin_conversation, name="pin_conversation"),
    path("c/<int:pk>/archive/", chat_views.archive_conversation, name="archive_conversation"),
    path("archive/", chat_views.archive, name="archive"),
    path("archive/delete/", chat_views.delete_archived, name="delete_archived"),
    path("sidebar/", chat_views.sidebar, name="sidebar"),
    path("composer/options/", chat_views.composer_options, name="composer_options"),
    path("usage/", usage_views.usage, name="usage"),
    path(
        "custom-instructions/",
        personal_views.custom_instructions,
        name="custom_instructions",
    ),
    path("prompts/", prompt_views.prompts, name="prompts"),
    path("prompts/new/", prompt_views.new_prompt, name="new_prompt"),
    path("prompts/menu/", prompt_views.prompt_menu, name="prompt_menu"),
    path("prompts/<int:pk>/edit/", prompt_views.edit_prompt, name="edit_prompt"),
    path("prompts/<int:pk>/delete/", prompt_views.delete_prompt, name="delete_prompt"),
    path("assistants/", assistant_views.assistants, name="assistants"),
    path("assistants/new/", assistant_views.new_assistant, name="assistant_new"),
    path("assistants/<int:pk>/edit/", assistant_views.edit_assistant, name="assistant_edit"),
    path("assistants/<int:pk>/delete/", assistant_views.delete_assistant, name="assistant_delete"),
    path("assistants/<int:pk>/icon.png", assistant_views.assistant_icon, name="assistant_icon"),
    path(
        "c/<int:pk>/without-assistant/",
        assistant_views.leave_assistant,
        name="leave_assistant",
    ),
    path("assistants/import/", transfer_views.import_assistant, name="assistant_import"),
    path(
        "assistants/<int:pk>/export.json",
        transfer_views.export_assistant,
        name="assistant_export",
    ),
    path("search/", export_views.search, name="search"),
    path("c/<int:pk>/export.md", export_views.export_markdown, name="export_markdown"),
    path("c/<int:pk>/export.json", export_views.export_json, name="export_json"),
    path("c/<int:pk>/export.zip", export_views.export_zip, name="export_zip"),
    path("account/export.zip", export_views.export_account, name="export_account"),
    path("attachments/", attachment_views.upload_attachment, name="upload_attachment"),
    path("attachments/<int:pk>/", attachment_views.attachment, name="attachment"),
    path(
        "attachments/<int:pk>/thumb/",
        attachment_views.attachment_thumbnail,
        name="attachment_thumbnail",
    ),
    path(
        "attachments/<int:pk>/delete/",
        attachment_views.delete_attachment,
        name="delete_attachment",
    ),
    path("c/<int:pk>/share/", share_views.share_conversation, name="share_conversation"),
    path("c/<int:pk>/members/", group_views.members_dialog, name="members"),
    path("c/<int:pk>/members/search/", group_views.member_search, name="member_search"),
    path("c/<int:pk>/members/invite/", group_views.invite_members, name="invite_members"),
    path(
        "c/<int:pk>/members/<int:user_id>/remove/",
        group_views.remove_member,
        name="remove_member",
    ),
    path("c/<int:pk>/members/leave/", group_views.leave_conversation, name="leave_conversation"),
    path("c/<int:pk>/members/end/", group_views.end_group, name="end_group"),
    path("c/<int:pk>/answer-mode/", group_views.set_answer_mode, name="answer_mode"),
    path("shares/", share_views.shares, name="shares"),
    path("shares/<int:pk>/revoke/", share_views.revoke_share, name="revoke_share"),
    path("shares/<int:pk>/update/", share_views.update_share, name="update_share"),
    path("s/<str:token>/", share_views.shared_transcript, name="shared_transcript"),
    path("s/<str:token>/continue/", share_views.continue_shared, name="continue_shared"),
    path("s/<str:token>/images/<int:pk>/", share_views.shared_image, name="shared_image"),
    path(
        "s/<str:token>/images/<int:pk>/thumb/",
        share_views.shared_image,
        {"thumbnail": True},
        name="shared_image_thumbnail",
    ),
]
