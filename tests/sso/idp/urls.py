from django.contrib.auth import views as auth_views
from django.urls import include, path

from tests.sso.idp import faults

urlpatterns = [
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
    path("accounts/login/", auth_views.LoginView.as_view(template_name="idp/login.html")),
    path("control/fault", faults.control_fault),
    path("control/groups", faults.control_groups),
]
