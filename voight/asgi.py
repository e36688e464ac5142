"""ASGI entry: HTTP through Django, websockets through Channels (authenticated, origin-checked),
and the held approval requests (`approvals.hold`) on their own path, outside Django's
handler: a waiting agent must cost the process a coroutine, not a thread."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voight.settings")
django_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path, re_path  # noqa: E402

from approvals.hold import HoldApp  # noqa: E402
from voight.client.install import APPROVAL_PATH  # noqa: E402
from voight.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter({
    "http": URLRouter([
        path(APPROVAL_PATH.lstrip("/"), HoldApp()),
        re_path(r"", django_app),
    ]),
    "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
})
