from django.urls import path

from conversations import usage_views, views

urlpatterns = [
    path("", views.chat, name="chat"),
    path("c/<int:pk>/", views.conversation, name="conversation"),
    path("c/<int:pk>/rename/", views.rename_conversation, name="rename_conversation"),
    path("c/<int:pk>/delete/", views.delete_conversation, name="delete_conversation"),
    path("sidebar/", views.sidebar, name="sidebar"),
    path("usage/", usage_views.usage, name="usage"),
]
