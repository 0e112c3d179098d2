"""Root URLs: the chat app, accounts, languages, the admin and the health check."""

from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog

from chatweb import health
from chatweb.security import ThrottledAdminAuthenticationForm
from chatweb.sso import views as sso_views
from chatweb.sso.forms import PasswordSignInForm
from conversations import preferences

admin.site.login_form = ThrottledAdminAuthenticationForm

urlpatterns = [
    path("", include("conversations.urls")),
    path(
        "accounts/login/",
        sso_views.LoginView.as_view(
            redirect_authenticated_user=True, authentication_form=PasswordSignInForm
        ),
        name="login",
    ),
    # Ends the provider's session too when the user signed in through one.
    path("accounts/logout/", sso_views.logout, name="logout"),
    path("accounts/oidc/", include("chatweb.sso.urls")),
    # Django's own set_language, wrapped to keep a signed-in user's choice on the account.
    path("i18n/setlang/", preferences.set_language, name="set_language"),
    path("jsi18n/", login_not_required(JavaScriptCatalog.as_view()), name="javascript-catalog"),
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
]
