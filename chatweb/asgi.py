"""The ASGI entry point: Django for HTTP, Channels for websockets, in one process.

Serve it with `daphne chatweb.asgi:application`. Websockets pass the Origin check
(same host and port as the page, or CSRF_TRUSTED_ORIGINS, so another site cannot open
a socket with our cookies; see chatweb/security.py) and the
session authentication before they reach a consumer. Both kinds of request first get
the client address our own proxies vouch for (chatweb/clientaddress.py).
"""

import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatweb.settings")

from chatweb.clientaddress import TrustedProxyAddress, refuse_proxy_headers_flag
from chatweb.env import EnvError
from chatweb.graceful import install_under_daphne

try:
    from django.conf import settings
    from django.core.asgi import get_asgi_application

    django_application = get_asgi_application()
    refuse_proxy_headers_flag(sys.argv, settings.TRUSTED_PROXY_COUNT)
except EnvError as error:
    sys.exit(f"chatweb: configuration error: {error}")

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter

from chatweb.routing import websocket_urlpatterns
from chatweb.security import SameOriginValidator
from conversations.pipeline.socketlimits import SendBacklog

application = TrustedProxyAddress(
    ProtocolTypeRouter(
        {
            "http": django_application,
            "websocket": SendBacklog(
                SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
            ),
        }
    ),
    settings.TRUSTED_PROXY_COUNT,
)

# SIGTERM lets running answers finish before Daphne stops (chatweb/graceful.py).
install_under_daphne()
