"""/docs (Swagger UI) and /redoc served from the package, so they work offline.

FastAPI's own pages load their scripts from a CDN, which leaves them blank without internet.
The `fastapi-offline` package ships the Swagger UI and ReDoc bundles; they are served here under
`/docs-static`. Swagger UI starts from a small inline script, which the site-wide
Content-Security-Policy (see `guard`) would block, so these two pages carry their own policy
that allows exactly that script by its SHA-256 hash (and ReDoc's blob: search worker).
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(str(files("fastapi_offline") / "static"))
PREFIX = "/docs-static"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def _with_policy(page: HTMLResponse) -> HTMLResponse:
    """The page with a CSP allowing its own inline scripts (by hash) and nothing else inline."""
    body = bytes(page.body).decode()
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in _INLINE_SCRIPT.findall(body)
    )
    policy = "; ".join(
        (
            "default-src 'self'",
            f"script-src 'self' {hashes}".strip(),
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "worker-src 'self' blob:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        )
    )
    return HTMLResponse(body, headers={"content-security-policy": policy})


def add_docs(app: FastAPI) -> None:
    """Mount the assets and add /docs, its OAuth2 redirect and /redoc (create the app with
    docs_url=None and redoc_url=None so FastAPI's CDN pages are not added too)."""
    app.mount(PREFIX, StaticFiles(directory=ASSETS), name="docs-static")
    openapi = app.openapi_url or "/openapi.json"
    title = app.title

    @app.get("/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        return _with_policy(
            get_swagger_ui_html(
                openapi_url=openapi,
                title=f"{title} API",
                oauth2_redirect_url="/docs/oauth2-redirect",
                swagger_js_url=f"{PREFIX}/swagger-ui-bundle.js",
                swagger_css_url=f"{PREFIX}/swagger-ui.css",
                swagger_favicon_url=f"{PREFIX}/favicon.png",
            )
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    def oauth2_redirect() -> HTMLResponse:
        return _with_policy(get_swagger_ui_oauth2_redirect_html())

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return _with_policy(
            get_redoc_html(
                openapi_url=openapi,
                title=f"{title} API",
                redoc_js_url=f"{PREFIX}/redoc.standalone.js",
                redoc_favicon_url=f"{PREFIX}/favicon.png",
                with_google_fonts=False,
            )
        )
