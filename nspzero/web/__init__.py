"""The browser page of `nspzero serve` (at `/`) and offline API docs (`/docs`, `/redoc`).

The page is three static files in this folder (index.html, app.js, style.css): no CDN, no build
step. It talks to the same `POST /classify` as any client, so page and API cannot disagree; two
small read-only endpoints give it what it needs: `GET /prompts` (the named label prompt sets and
their variants) and `GET /limits` (the server's per-request limits, so files are sent in chunks
the server accepts). Swagger UI / ReDoc assets come from the `fastapi-offline` package, so the
docs render without internet. fastapi is imported only when `mount_web` runs (the 'serve' extra).
"""
from __future__ import annotations

import functools
import logging
import os
from importlib import resources
from pathlib import Path
from typing import Any, Optional

from ..extras import install_hint
from ..http_limits import MAX_PAIRS

log = logging.getLogger("nspzero")

ASSETS = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
          "style.css": "text/css; charset=utf-8"}
DOCS_STATIC = "/docs-static"
NO_OFFLINE_DOCS = ("/docs loads Swagger UI from a CDN because the 'fastapi-offline' package is missing: "
                   f"{install_hint('serve')} to serve the docs offline")


def asset_text(name: str) -> str:
    """One of the page's files, read from the installed package."""
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


def page_weight() -> int:
    """Bytes the browser downloads for the page (index.html + app.js + style.css)."""
    return sum(len(asset_text(name).encode("utf-8")) for name in ASSETS)


@functools.lru_cache(maxsize=1)
def prompt_catalogue() -> list[dict[str, Any]]:
    """Every named prompt set that has label variants (the only kind /classify takes), each with
    its default and its label variants: key, templates, placement, combine, label → words."""
    from ..prompt_sets import list_prompt_sets, load_prompt_set

    out = []
    for name in list_prompt_sets():
        variants = load_prompt_set(name)
        default = variants[""]
        labelled = [v for key, v in variants.items() if key and v.words is not None]
        if not labelled:
            continue  # sentence-pair prompts (ocnli, csl, ...) cannot classify texts
        out.append({
            "name": name,
            "default": default.name if default.words is not None else labelled[0].name,
            "variants": [{"name": v.name, "key": v.key, "templates": list(v.templates), "placement": v.placement,
                          "combine": v.combine, "labels": {k: list(w) for k, w in (v.words or {}).items()}}
                         for v in labelled],
        })
    return out


def _swagger_static() -> Optional[Path]:
    """fastapi-offline's vendored Swagger UI / ReDoc folder, or None when it is not installed."""
    try:
        import fastapi_offline
    except ImportError:
        return None
    folder = Path(fastapi_offline.__file__).parent / "static"
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


def mount_web(app: Any, *, max_texts: int = 256, max_labels: int = 256, max_text_chars: int = 20000,
              max_pairs: int = MAX_PAIRS, results_dir: Optional[str | os.PathLike[str]] = None) -> None:
    """Add the page (`/`, `/static/*`), `GET /prompts`, `GET /limits`, and `/docs` + `/redoc`
    with local assets to a FastAPI `app` created with `docs_url=None, redoc_url=None`.

    The limits are the ones /classify enforces (the page chunks uploads by them). With
    `results_dir` (an eval output folder), `GET /report` shows its HTML report, built per request.
    """
    from fastapi import HTTPException
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
    from fastapi.responses import HTMLResponse, Response

    limits = {"max_texts": max_texts, "max_labels": max_labels, "max_text_chars": max_text_chars,
              "max_pairs": max_pairs}

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        page = asset_text("index.html")
        if results_dir is not None:  # link the eval report
            page = page.replace('<span id="report-link" hidden>', '<span id="report-link">')
        return Response(page, media_type=ASSETS["index.html"],
                        headers={"Cache-Control": "no-cache"})

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in ASSETS or name == "index.html":
            raise HTTPException(404, f"no static file {name!r}")
        return Response(asset_text(name), media_type=ASSETS[name], headers={"Cache-Control": "no-cache"})

    @app.get("/prompts", summary="Named label prompt sets")
    async def prompts() -> dict:
        """The named prompt sets /classify accepts in `prompt` (label prompts only), with their
        variants: pass `name` for the default variant or `name:variant` (the variant's `key`)."""
        return {"prompt_sets": prompt_catalogue()}

    @app.get("/limits", summary="Per-request limits of /classify")
    async def get_limits() -> dict:
        """The most texts, labels and characters per text one /classify request may hold (more: 413)."""
        return limits

    if results_dir is not None:
        @app.get("/report", include_in_schema=False)
        async def report() -> HTMLResponse:
            from ..html_report import render_report

            return HTMLResponse(render_report(results_dir))

    static_dir = _swagger_static()
    if static_dir is None:
        log.warning(NO_OFFLINE_DOCS)
        js, css, favicon = ("https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js",
                            "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css",
                            "https://fastapi.tiangolo.com/img/favicon.png")
        redoc_js = "https://cdn.jsdelivr.net/npm/redoc@2/bundles/redoc.standalone.js"
    else:
        from fastapi.staticfiles import StaticFiles

        app.mount(DOCS_STATIC, StaticFiles(directory=str(static_dir)), name="docs-static")
        js, css, favicon = (f"{DOCS_STATIC}/swagger-ui-bundle.js", f"{DOCS_STATIC}/swagger-ui.css",
                            f"{DOCS_STATIC}/favicon.png")
        redoc_js = f"{DOCS_STATIC}/redoc.standalone.js"
    oauth_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"
    # validatorUrl null: Swagger UI would otherwise fetch a badge from validator.swagger.io for non-local hosts
    swagger_parameters = {"validatorUrl": None, **(app.swagger_ui_parameters or {})}

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} - API docs",
                                   oauth2_redirect_url=oauth_url, swagger_js_url=js, swagger_css_url=css,
                                   swagger_favicon_url=favicon, swagger_ui_parameters=swagger_parameters)

    @app.get(oauth_url, include_in_schema=False)
    async def docs_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=app.openapi_url, title=f"{app.title} - ReDoc", redoc_js_url=redoc_js,
                              redoc_favicon_url=favicon, with_google_fonts=False)
