"""The browser page of `nspzero serve` (at `/`) and the eval report (`/report`).

The page is three static files in this folder (index.html, app.js, style.css): no CDN, no build
step. It talks to the same `POST /classify` as any client, so page and API cannot disagree; two
small read-only endpoints give it what it needs: `GET /prompts` (the named label prompt sets and
their variants) and `GET /limits` (the server's per-request limits, so files are sent in chunks
the server accepts). The docs (/docs, /redoc) come with the app (fastapi-offline, nspzero.serve).
fastapi is imported only when `mount_web` runs (the 'serve' extra).
"""
from __future__ import annotations

import functools
import os
from importlib import resources
from pathlib import Path
from typing import Any, Optional



ASSETS = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
          "style.css": "text/css; charset=utf-8"}


def asset_text(name: str) -> str:
    """One of the page's files, read from the installed package."""
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


def _has_cjk(words: dict[str, list[str]]) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ws in words.values() for w in ws for ch in w)


@functools.lru_cache(maxsize=1)
def prompt_catalogue() -> list[dict[str, Any]]:
    """Every named prompt set that has label variants (the only kind /classify takes), each with
    its default and its label variants: key, templates, placement, combine, label → words. Chinese
    sets (FewCLUE's, for the default Chinese model) come first, then the English ones, each by name."""
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
    return sorted(out, key=lambda s: (not _has_cjk(s["variants"][0]["labels"]), s["name"]))


def report_html(results_dir: str | os.PathLike[str]) -> str:
    """The eval report of `results_dir`, rendered once per version of its results.json (a re-run
    eval is shown anew; every other visit is served from memory)."""
    path = Path(results_dir)
    try:
        stat = (path / "results.json").stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        stamp = None
    return _rendered(str(path.resolve()), stamp)


@functools.lru_cache(maxsize=8)
def _rendered(folder: str, stamp: Optional[tuple[int, int]]) -> str:
    from ..reports.html import render_report_html

    return render_report_html(folder)


def mount_web(app: Any, *, limits: Optional[dict[str, int]] = None,
              results_dir: Optional[str | os.PathLike[str]] = None) -> None:
    """Add the page (`/`, `/static/*`), `GET /prompts` and `GET /limits` to a FastAPI `app`.

    `limits` are the ones /classify enforces (the page chunks uploads by them). With `results_dir`
    (an eval output folder), `GET /report` shows its HTML report, rendered off the event loop once.
    """
    from fastapi import HTTPException
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import HTMLResponse, Response

    from ..serve.dependencies import Limits

    limits = dict(limits or Limits().to_dict())

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
    def prompts() -> dict:  # sync: FastAPI runs it in the thread pool (the first call reads every prompt file)
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
            return HTMLResponse(await run_in_threadpool(report_html, results_dir))
