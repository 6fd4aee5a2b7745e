"""What the web app does to every request and response, whatever the route.

- **Allowed hosts** (DNS rebinding): a page on another origin can point its own host name at
  127.0.0.1 and then read the API as "same origin". Answering only the Host names we serve
  under (loopback, WEB_HOST, WEB_ALLOWED_HOSTS) defeats that; others get 400.
- **Security headers**: a Content-Security-Policy that allows scripts only from this origin
  (no inline script, no eval), so text from the store that slips into HTML cannot run even if a
  renderer forgets to escape it; `nosniff`, no framing, no referrer. Inline *styles* stay
  allowed: ECharts builds its tooltips as HTML with style attributes.
- **Slow clients**: a client that stops reading holds its response, and the memory behind it,
  until the socket drains. Each `send` may wait at most WEB_SEND_TIMEOUT seconds; after that the
  rest of the response is dropped and the connection closed.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tickwatch.config import Settings

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
WILDCARD_BINDS = ("0.0.0.0", "::", "")

CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HEADERS: dict[str, str] = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def allowed_hosts(settings: Settings) -> list[str]:
    """Loopback names, WEB_HOST when it names one address, and WEB_ALLOWED_HOSTS."""
    hosts = list(LOOPBACK_HOSTS)
    if settings.web_host not in WILDCARD_BINDS:
        hosts.append(settings.web_host)
    hosts += [h.strip() for h in settings.web_allowed_hosts.split(",") if h.strip()]
    return list(dict.fromkeys(hosts))


class SecurityHeaders:
    """Adds `HEADERS` to every HTTP response that does not set its own value."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw: list[tuple[bytes, bytes]] = list(message.get("headers", []))
                present = {name.lower() for name, _ in raw}
                raw += [
                    (k.encode(), v.encode())
                    for k, v in HEADERS.items()
                    if k.encode() not in present
                ]
                message = {**message, "headers": raw}
            await send(message)

        await self.app(scope, receive, with_headers)


class ClientStalled(Exception):
    """Raised into the app when its client stopped reading, so generators (SSE) unwind."""


def _stalled(exc: BaseException) -> bool:
    if isinstance(exc, ClientStalled):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(_stalled(e) for e in exc.exceptions)
    return False


CHUNK = 256 * 1024


class SendTimeout:
    """Drops a response whose client has not taken a chunk for `seconds` (see module doc).

    A large body sent as one message would be queued whole in the server's write buffer,
    where no timeout can reach it; it is passed on in CHUNK-sized parts, so each part waits for
    the client to take the previous ones, and a client that stops reading is dropped.
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def timed(message: Message) -> None:
            try:
                await asyncio.wait_for(send(message), self.seconds)
            except TimeoutError:
                raise ClientStalled(scope.get("path")) from None

        async def bounded(message: Message) -> None:
            body = message.get("body", b"")
            if message["type"] != "http.response.body" or len(body) <= CHUNK:
                await timed(message)
                return
            more = message.get("more_body", False)
            for at in range(0, len(body), CHUNK):
                last = at + CHUNK >= len(body)
                part = body[at : at + CHUNK]
                await timed({**message, "body": part, "more_body": more if last else True})

        try:
            await self.app(scope, receive, bounded)
        except BaseException as exc:
            if not _stalled(exc):
                raise
            client = scope.get("client")
            log.warning(
                "client %s stopped reading %s for %g s; response dropped, connection closed",
                client[0] if client else "?",
                scope.get("path"),
                self.seconds,
            )
