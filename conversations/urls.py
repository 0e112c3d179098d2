from django.urls import path

from conversations import attachment_views, history_views, share_views, usage_views, views

urlpatterns = [
    path("", views.chat, name="chat"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("c/<int:pk>/", views.conversation, name="conversation"),
    path("c/<int:pk>/earlier/", views.earlier_messages, name="earlier_messages"),
    path("c/<int:pk>/rename/", views.rename_conversation, name="rename_conversation"),
    path("c/<int:pk>/delete/", views.delete_conversation, name="delete_conversation"),
    path("c/<int:pk>/pin/", views.pin_conversation, name="pin_conversation"),
    path("c/<int:pk>/archive/", views.archive_conversation, name="archive_conversation"),
    path("archive/", views.archive, name="archive"),
    path("archive/delete/", views.delete_archived, name="delete_archived"),
    path("sidebar/", views.sidebar, name="sidebar"),
    path("composer/options/", views.composer_options, name="composer_options"),
    path("usage/", usage_views.usage, name="usage"),
    path("search/", history_views.search, name="search"),
    path("c/<int:pk>/export.md", history_views.export_markdown, name="export_markdown"),
    path("c/<int:pk>/export.json", history_views.export_json, name="export_json"),
    path("c/<int:pk>/export.zip", history_views.export_zip, name="export_zip"),
    path("account/export.zip", history_views.export_account, name="export_account"),
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
