from django.urls import path

from conversations import attachment_views, usage_views, views

urlpatterns = [
    path("", views.chat, name="chat"),
    path("c/<int:pk>/", views.conversation, name="conversation"),
    path("c/<int:pk>/rename/", views.rename_conversation, name="rename_conversation"),
    path("c/<int:pk>/delete/", views.delete_conversation, name="delete_conversation"),
    path("sidebar/", views.sidebar, name="sidebar"),
    path("composer/options/", views.composer_options, name="composer_options"),
    path("usage/", usage_views.usage, name="usage"),
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
]
