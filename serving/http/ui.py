"""The reading page at ``/ui``: one article, what the models did to it, for editors.

The page is three static files in ``serving/http/static/`` (no build step, nothing fetched from
outside, so it works offline) and calls the public ``POST /analyze``, so it shows exactly
what API clients get. This module serves them as a small Starlette app that the service
mounts (``Akhbar.mount_asgi_app``). Routes:

* ``GET /ui`` (and ``/ui/``): ``index.html``; ``/ui/ui.css``, ``/ui/ui.js``;
* ``GET /ui/page.json``: ``{"token_required": bool, "sample": SAMPLE_ARTICLE}``, so the page
  knows whether to ask for the token and has the sample article without a second copy.

The middleware (:mod:`akhbar.serving.http.middleware`) leaves ``/ui`` and ``/ui/*`` open: the page
loads without a token, asks for it when the service has one, keeps it in memory and sends it
as ``Authorization: Bearer``; the API routes stay protected.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from akhbar.serving.http.middleware import current_settings

STATIC = Path(__file__).parent / "static"
ASSETS = {"ui.css": "text/css; charset=utf-8", "ui.js": "text/javascript; charset=utf-8"}

# Same-origin only: a second line of defence behind the files themselves (which a test
# checks for outside URLs). Setting element.style from the script is allowed by style-src.
HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",  # a restarted service with a new page is seen at once
}


def _file(name: str, media_type: str) -> Response:
    return Response((STATIC / name).read_bytes(), media_type=media_type, headers=HEADERS)


async def _index(_: Request) -> Response:
    return _file("index.html", "text/html; charset=utf-8")


async def _asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in ASSETS:
        return JSONResponse({"error": f"no such file: /ui/{name}"}, status_code=404)
    return _file(name, ASSETS[name])


async def _page(_: Request) -> Response:
    # The service module imports this one; by the first request it is loaded.
    from akhbar.serving.core.articles import SAMPLE_ARTICLE

    settings = current_settings()  # None only without the middleware, which is what checks tokens
    token_required = settings is not None and settings.api_token is not None
    return JSONResponse(
        {"token_required": token_required, "sample": SAMPLE_ARTICLE}, headers=HEADERS
    )


def page_app() -> Starlette:
    """The page's routes, with their full paths: mount the app at ``/``.

    BentoML mounts apps with a passive mount that matches only the paths its routes
    declare, so mounting at ``/`` serves ``/ui`` itself, without a redirect to ``/ui/``,
    and leaves every other path to the service.
    """
    return Starlette(
        routes=[
            Route("/ui", _index, methods=["GET"]),
            Route("/ui/", _index, methods=["GET"]),
            Route("/ui/page.json", _page, methods=["GET"]),
            Route("/ui/{name}", _asset, methods=["GET"]),
        ]
    )
