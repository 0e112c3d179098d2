"""Root URLs: the chat app, accounts, languages, the admin and the health check."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog

from chatweb import health
from chatweb.security import ThrottledAdminAuthenticationForm, ThrottledAuthenticationForm
from conversations import preferences

admin.site.login_form = ThrottledAdminAuthenticationForm

urlpatterns = [
    path("", include("conversations.urls")),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(
            redirect_authenticated_user=True, authentication_form=ThrottledAuthenticationForm
        ),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Django's own set_language, wrapped to keep a signed-in user's choice on the account.
    path("i18n/setlang/", preferences.set_language, name="set_language"),
    path("jsi18n/", login_not_required(JavaScriptCatalog.as_view()), name="javascript-catalog"),
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
]
