"""ASGI entry point: HTTP through Django, WebSockets through Channels."""

import gc
import os
import sys

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")

# The GIL hand-off interval (CPython's default is 5 ms). The socket consumers'
# database calls run in worker threads beside the event loop: each query's
# reply has to win the GIL back from the loop, and with the default a thread
# waited up to 5 ms for it after every round trip (12 per chat message).
# bench/bench_chat.py: see docs/PERFORMANCE.md, "Messaging".
sys.setswitchinterval(float(os.environ.get("ASGI_GIL_SWITCH_INTERVAL", "0.001")))

# Garbage collection thresholds. Every open socket keeps a few thousand
# long-lived objects (consumer, protocol, deflate state, tasks), and each chat
# message allocates thousands of short-lived ones (ORM queries), which with
# CPython's defaults (700, 10, 10) triggered collections that walk the whole
# heap: at 1,000 sockets py-spy found the server in gc_collect_main most of the
# time. Fewer, larger young-generation collections; see docs/PERFORMANCE.md.
gc.set_threshold(*(int(n) for n in os.environ.get("ASGI_GC_THRESHOLD", "50000,20,100").split(",")))

# Django must be set up before anything imports models.
django_asgi_app = get_asgi_application()

# Load the URLconf (every view module) and the default language's catalogs now,
# not in the first request or chat message: that took ~0.6 s while holding the
# GIL, so every socket of the process stalled and a backlog formed
# (bench/bench_chat.py measured it as the tail of the first seconds).
from django.urls import get_resolver  # noqa: E402
from django.utils.translation import gettext  # noqa: E402

get_resolver().reverse_dict  # noqa: B018 - builds the reverse lookup table
gettext("Messages")

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from core.socket_sessions import AuthMiddlewareStack  # noqa: E402
from marketplace.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

# Everything loaded so far (Django, the URLconf, the catalogs, the routing) lives
# as long as the process: move it out of the collector's generations, so a full
# collection no longer walks it.
gc.freeze()
