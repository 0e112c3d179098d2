"""The ASGI entry point: Django for HTTP, Channels for websockets, in one process.

Serve it with `daphne chatweb.asgi:application`. Websockets pass the Origin check
(against ALLOWED_HOSTS, so another site cannot open a socket with our cookies) and the
session authentication before they reach a consumer.
"""

import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatweb.settings")

from chatweb.env import EnvError

try:
    from django.core.asgi import get_asgi_application

    django_application = get_asgi_application()
except EnvError as error:
    sys.exit(f"chatweb: configuration error: {error}")

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator

from chatweb.routing import websocket_urlpatterns

application = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
