"""Websocket URL routes, mounted by `chatweb.asgi`."""

from conversations.routing import websocket_urlpatterns

__all__ = ["websocket_urlpatterns"]
