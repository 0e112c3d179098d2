"""The ASGI entry point: Django for HTTP, Channels for websockets, in one process.

Serve it with `daphne chatweb.asgi:application`. Websockets pass the Origin check
(same host and port as the page, or CSRF_TRUSTED_ORIGINS, so another site cannot open
a socket with our cookies; see chatweb/security.py) and the
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

from chatweb.routing import websocket_urlpatterns
from chatweb.security import SameOriginValidator

application = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
