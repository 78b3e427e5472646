"""The explorer's FastAPI app: the page, its scripts, and the REST API (documented at ``/docs``).

::

    GET  /                                  the explorer page
    GET  /static/{name}                     its script and style, and the attention view's
    GET  /api/runs                          the runs found at start-up
    GET  /api/runs/{run_id}                 one run: config, summary, scores, curves
    POST /api/runs/{run_id}/translate       sentences in, n-best translations out
    POST /api/runs/{run_id}/attention       one sentence's attention (every kind, layer, head) and statistics
    POST /api/runs/{run_id}/attention/view  the same as the interactive view's HTML (what the page shows)
    GET  /api/limits  GET /api/status       the per-request limits; loaded models and work in progress
    GET  /reports/{report_id}               a sweep's or comparison's report.html
    GET  /docs  GET /openapi.json           this API, documented (Swagger UI served locally)

Errors are JSON ``{"detail": "one line"}``: 400 for a body that is not JSON, 404 for an unknown run
or report, 409 when a run lacks what is asked (a checkpoint), 413 for an oversized body, 422 for a
request outside the limits or that the model cannot take, 503 when the server is busy.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi_offline import FastAPIOffline

from attnlab.attention_view.html import VIEW_ASSETS, view_asset
from attnlab.data.errors import DataError
from attnlab.rundir import RunError
from attnlab.serve import schemas
from attnlab.serve.explorer import Explorer, Unavailable, UnknownRun, json_ready
from attnlab.serve.limits import Gate, LimitError, Overloaded
from attnlab.serve.runinfo import run_details, run_summary

__all__ = ["create_app"]

_ERRORS: dict[type[Exception], int] = {
    UnknownRun: 404, Unavailable: 409, LimitError: 422, DataError: 422, RunError: 422, Overloaded: 503,
}
_MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}
_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": schemas.ErrorOut, "description": text}
    for code, text in ((404, "unknown run"), (409, "the run lacks a checkpoint"), (422, "outside the limits"),
                       (503, "busy: every worker taken and the queue full"))
}


def _assets() -> dict[str, tuple[str, str]]:
    """name -> (text, media type): the page's files and the attention view's, read once."""
    folder = resources.files("attnlab.serve") / "static"
    names = [entry.name for entry in folder.iterdir() if entry.name.endswith((".js", ".css", ".html"))]
    assets = {name: ((folder / name).read_text(encoding="utf-8"), name[name.rindex("."):]) for name in names}
    assets.update({name: (view_asset(name), name[name.rindex("."):]) for name in VIEW_ASSETS})
    return {name: (text, _MEDIA_TYPES[suffix]) for name, (text, suffix) in assets.items()}


def _install_error_handlers(app: FastAPI) -> None:
    async def known(_: Request, exc: Exception) -> JSONResponse:
        status = next(code for kind, code in _ERRORS.items() if isinstance(exc, kind))
        headers = {"Retry-After": "1"} if status == 503 else None
        return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)

    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            ctx = next(e.get("ctx", {}) for e in errors if e.get("type") == "json_invalid")
            return JSONResponse({"detail": f"the request body is not valid JSON ({ctx.get('error', 'parse error')})"},
                                status_code=400)
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg')}"
                 for e in errors]
        return JSONResponse({"detail": "; ".join(parts)}, status_code=422)

    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}): {exc}"}, status_code=500)

    for kind in (*_ERRORS, ValueError):
        app.add_exception_handler(kind, known if kind in _ERRORS else _as_422)
    app.add_exception_handler(RequestValidationError, invalid)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, unexpected)


async def _as_422(_: Request, exc: Exception) -> JSONResponse:
    """A ValueError from the model code is about the request's content (an empty sentence, ...)."""
    return JSONResponse({"detail": str(exc)}, status_code=422)


def create_app(explorer: Explorer, workers: int = 2, queue: int = 32) -> FastAPI:
    """The app over ``explorer``'s runs: ``workers`` inference threads, ``queue`` more requests may wait."""
    gate = Gate(workers, queue)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        gate.close()

    # FastAPIOffline: the /docs page with Swagger UI's files served from here, not from a CDN
    app = FastAPIOffline(title="attnlab explorer", version="1", lifespan=lifespan, redoc_url=None,
                         description="Translate with trained attnlab runs and look at their attention. Runs are "
                                     "named by the ids of GET /api/runs; limits are at GET /api/limits.")
    app.state.explorer, app.state.gate = explorer, gate
    _install_error_handlers(app)
    _add_body_limit(app, explorer.limits.max_body_bytes)
    _add_page_routes(app, explorer)
    _add_run_routes(app, explorer)
    _add_inference_routes(app, explorer, gate)
    return app


def _add_body_limit(app: FastAPI, max_bytes: int) -> None:
    @app.middleware("http")
    async def body_limit(request: Request, call_next: Any) -> Response:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_bytes:
            return JSONResponse({"detail": f"the request body has {length} bytes; this server accepts at most "
                                           f"{max_bytes}"}, status_code=413)
        return await call_next(request)


def _add_page_routes(app: FastAPI, explorer: Explorer) -> None:
    assets = _assets()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(assets["index.html"][0])

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in assets:
            raise HTTPException(404, f"no file {name!r} here")
        text, media_type = assets[name]
        return Response(text, media_type=media_type)

    @app.get("/reports/{report_id}", response_class=FileResponse, tags=["runs"], responses=_ERROR_RESPONSES)
    def report(report_id: str) -> FileResponse:
        """A comparison report found at start-up (``report.html`` of a sweep or of ``attnlab compare``)."""
        if report_id not in explorer.catalog.reports:
            raise HTTPException(404, f"report {report_id!r} is unknown; GET /api/runs gives each run's report_id")
        return FileResponse(explorer.catalog.reports[report_id].path, media_type="text/html")


def _add_run_routes(app: FastAPI, explorer: Explorer) -> None:
    @app.get("/api/runs", response_model=list[schemas.RunSummary], tags=["runs"])
    def list_runs() -> list[dict[str, Any]]:
        """The runs found at start-up: architecture, parameters, best scores, train time, status."""
        return [run_summary(entry) for entry in explorer.catalog.runs.values()]

    @app.get("/api/runs/{run_id}", response_model=schemas.RunDetails, tags=["runs"], responses=_ERROR_RESPONSES)
    def get_run(run_id: str) -> dict[str, Any]:
        """One run: its list entry plus config, summary and curves (one point per epoch)."""
        return run_details(explorer.entry(run_id))

    @app.get("/api/limits", response_model=schemas.LimitsOut, tags=["server"])
    def limits() -> dict[str, int]:
        """What one request may ask (beyond it: 422 with a message)."""
        return explorer.limits.as_dict()

    @app.get("/api/status", response_model=schemas.StatusOut, tags=["server"])
    def status() -> dict[str, Any]:
        """Loaded models and their memory against the budget; requests in progress and refused."""
        return {"runs": len(explorer.catalog.runs), "cache": explorer.cache.status(), "gate": app.state.gate.status()}


def _add_inference_routes(app: FastAPI, explorer: Explorer, gate: Gate) -> None:
    limits = explorer.limits

    @app.post("/api/runs/{run_id}/translate", response_model=schemas.TranslateResponse, tags=["inference"],
              responses=_ERROR_RESPONSES)
    async def translate(run_id: str, body: schemas.TranslateRequest) -> dict[str, Any]:
        """Translate raw sentences (greedy with beam 1, else beam search), n-best lists best first."""
        explorer.entry(run_id)
        limits.check_sentences(body.sentences)
        limits.check_search(body.beam, body.n_best)
        return await gate.run(explorer.translate, run_id, body.sentences, body.beam, body.n_best)

    def check(run_id: str, body: schemas.AttentionRequest) -> None:
        explorer.entry(run_id)
        limits.check_text(body.text, "text")
        if body.reference is not None:
            limits.check_text(body.reference, "reference")
        limits.check_search(body.beam)

    @app.post("/api/runs/{run_id}/attention", response_model=schemas.AttentionResponse, tags=["inference"],
              responses=_ERROR_RESPONSES)
    async def attention(run_id: str, body: schemas.AttentionRequest) -> JSONResponse:
        """One sentence's attention, every layer and head of the kinds asked, with per-head statistics.

        Without ``reference`` the run translates the sentence (greedy, or beam search); with it, the
        reference is forced through the decoder. Target rows are labelled by the token they predict.
        """
        check(run_id, body)
        result = await gate.run(explorer.attention, run_id, body.text, body.reference, body.kind, body.beam,
                                body.compare_init)
        return JSONResponse(json_ready(result))  # already plain data: skip re-validating thousands of floats

    @app.post("/api/runs/{run_id}/attention/view", response_class=HTMLResponse, tags=["inference"],
              responses=_ERROR_RESPONSES)
    async def attention_view(run_id: str, body: schemas.AttentionRequest) -> HTMLResponse:
        """The same as ``/attention``, as the interactive view's HTML fragment (the page's, a notebook's).

        It needs ``/static/attention-view.css`` and ``attention-view.js`` (call
        ``attnlab.mountViews(element)`` after inserting it). Timing is in the ``Server-Timing`` header.
        """
        check(run_id, body)
        result = await gate.run(explorer.attention_view, run_id, body.text, body.reference, body.kind, body.beam,
                                body.compare_init)
        timing = f"infer;dur={1000 * result['seconds']:.1f}, load;dur={1000 * result['load_seconds']:.1f}"
        return HTMLResponse(result["html"], headers={"Server-Timing": timing})
