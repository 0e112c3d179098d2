"""The round trip to a provider: /accounts/oidc/<name>/login/ and .../callback/."""

from django.urls import path

from chatweb.sso import views

urlpatterns = [
    path("<slug:provider>/login/", views.begin, name="sso-begin"),
    path("<slug:provider>/callback/", views.callback, name="sso-callback"),
]
