"""The operations console: a Starlette application over an output root.

Pages (HTML, Jinja2 templates, no resource from the internet):

``GET  /``                  runs table: filter by status and mode, sort by any column
``GET  /run/{key}``         one run: bricks, CALDB files, products with their checks,
                            previews, source list, downloads
``GET  /files/{path}``      a file under the root (previews inline, products as downloads)
``GET  /reprocess``         choose collections and a CALDB; the jobs launched so far
``POST /reprocess``         launch reprocessing jobs (CSRF)
``GET  /jobs/{id}``         a job's live status, then the diff against the previous collection
``GET  /harness``           the last regression report, coverage and timing trends
``GET|POST /login``, ``POST /logout``

JSON (session cookie or ``Authorization: Bearer``): ``GET /api/runs``,
``GET /api/jobs/{id}``, ``POST /api/reprocess``; ``GET /health`` needs nothing.

Safety: every page but ``/login``, ``/health`` and ``/static`` needs the operator's
token (see :mod:`mxt_pipeline.console.auth`); every path is resolved (symbolic links
included) and must stay inside the root; POSTs with a session need its CSRF token;
the token is never rendered, logged, or put in a URL; answers carry a strict
Content-Security-Policy (scripts and styles from the console itself only).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import mimetypes
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from mxt_pipeline.console import auth
from mxt_pipeline.console.checks import ProductChecks
from mxt_pipeline.console.diff import diff_collections
from mxt_pipeline.console.jobs import CaldbChoice, JobManager
from mxt_pipeline.console.scan import NotServed, RootScanner, RunSummary, resolve_inside
from mxt_pipeline.console.trends import HarnessReports
from mxt_pipeline.errors import MXTInputError

__all__ = ["create_app", "ConsoleConfig"]

log = logging.getLogger(__name__)

_HERE = Path(__file__).parent
_MAX_FORM_BYTES = 64 * 1024
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")  # fmt: skip
#: Columns of the runs table that can be sorted, with their sort keys.
SORT_KEYS: dict[str, Callable[[RunSummary], Any]] = {
    "obs": lambda r: (r.obs_id, r.counter or 0),
    "mode": lambda r: r.mode,
    "status": lambda r: r.status,
    "started": lambda r: r.started,
    "duration": lambda r: r.duration_s if r.duration_s is not None else -1.0,
    "caldb": lambda r: r.caldb_version,
    "collection": lambda r: r.collection or "",
    "sources": lambda r: len(r.sources),
    "r90": lambda r: min((s.r90_arcsec for s in r.sources), default=float("inf")),
    "det_ml": lambda r: max((s.det_ml for s in r.sources), default=-1.0),
}
STATUS_CLASS = {"SUCCESS": "ok", "PARTIAL": "warn", "NO_DATA": "muted", "RUNNING": "run", "BUSY": "warn",
                "DONE": "ok", "QUEUED": "run", "FAILED": "bad"}  # fmt: skip


class ConsoleConfig:
    """Everything the console needs (built by ``mxt console`` or by tests)."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        tokens: auth.OperatorTokens,
        *,
        caldbs: list[CaldbChoice] | None = None,
        scheduler: str | None = None,
        workers: int = 1,
        reports: str | os.PathLike[str] | None = None,
        secure_cookies: bool = False,
    ) -> None:
        if not len(tokens):
            raise MXTInputError("no operator token configured: the console would refuse everyone")
        self.scanner = RootScanner(root)
        self.root = self.scanner.root
        self.tokens = tokens
        self.jobs = JobManager(self.root, caldbs or [CaldbChoice("default", None, "the default CALDB ($CALDB or bundled)")],
                               scheduler=scheduler, workers=workers)  # fmt: skip
        self.reports = HarnessReports(Path(reports) if reports is not None else None)
        self.secure_cookies = secure_cookies


def _fmt_duration(s: float | None) -> str:
    if s is None:
        return "–"
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {s % 60:02.0f} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def _fmt_size(n: int | None) -> str:
    if n is None:
        return ""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def _fmt_ra(ra: float) -> str:
    """Right ascension (deg) as ``HHhMMmSS.SSs``, rounded to 0.01 s (never ``60.00s``)."""
    cs = round((ra % 360.0) / 15.0 * 360000.0) % (24 * 360000)  # hundredths of a second of time
    hh, rest = divmod(cs, 360000)
    mm, cs = divmod(rest, 6000)
    return f"{hh:02d}h{mm:02d}m{cs // 100:02d}.{cs % 100:02d}s"


def _fmt_dec(dec: float) -> str:
    """Declination (deg) as ``+DD°MM'SS.S"``, rounded to 0.1 arcsec (never ``60.0"``)."""
    ds = round(abs(dec) * 36000.0)  # tenths of an arcsecond
    sign = "-" if dec < 0 and ds > 0 else "+"  # no "-00°00'00.0": what rounds to zero is zero
    dd, rest = divmod(ds, 36000)
    mm, ds = divmod(rest, 600)
    return f"{sign}{dd:02d}°{mm:02d}'{ds // 10:02d}.{ds % 10}\""


def _fmt_number(v: Any) -> str:
    """A metric: integers as they are, floats with 4 significant digits, anything else as text."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, int):
        return str(v)
    return f"{v:.4g}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        autoescape=True,  # every value from a file under the root is escaped
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(duration=_fmt_duration, size=_fmt_size, ra=_fmt_ra, dec=_fmt_dec,
                       url=lambda p: quote(p, safe="/"))  # fmt: skip
    env.globals["num"] = _fmt_number
    env.globals["status_class"] = lambda s: STATUS_CLASS.get(str(s), "bad" if s else "muted")
    return env


def _parse_form(body: bytes) -> dict[str, list[str]]:
    """An ``application/x-www-form-urlencoded`` body (no multipart: python-multipart is not needed)."""
    if len(body) > _MAX_FORM_BYTES:
        raise MXTInputError("form too large")
    return parse_qs(body.decode("utf-8", errors="strict"), keep_blank_values=True, max_num_fields=2000)


def _safe_next(target: str | None) -> str:
    """A redirect target after login: a local path only (no scheme, no '//host')."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def create_app(config: ConsoleConfig) -> Starlette:
    """Build the console's Starlette application."""
    env = _environment()
    sessions = auth.SessionStore()
    throttle = auth.LoginThrottle()
    checks = ProductChecks()
    diff_cache: dict[str, Any] = {}

    def headers(extra: dict[str, str] | None = None) -> dict[str, str]:
        h = {"Content-Security-Policy": _CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
             "X-Frame-Options": "DENY", "Cache-Control": "no-store"}  # fmt: skip
        if extra:
            h.update(extra)
        return h

    def render(name: str, request: Request, status: int = 200, **ctx: Any) -> HTMLResponse:
        session: auth.Session | None = request.scope.get("console_session")
        ctx.setdefault("csrf", session.csrf if session else "")
        ctx.setdefault("logged_in", request.scope.get("console_auth") is not None)
        ctx.setdefault("path", request.url.path)
        ctx.setdefault("root_name", config.root.name)
        html = env.get_template(name).render(**ctx)
        return HTMLResponse(html, status_code=status, headers=headers())

    def error_page(request: Request, status: int, message: str, api: bool) -> Response:
        if api:
            return JSONResponse({"detail": message}, status_code=status, headers=headers())
        return render("error.html", request, status=status, status_code=status, message=message)

    def identify(request: Request) -> tuple[str | None, auth.Session | None]:
        """('bearer'|'session'|None, session)."""
        presented = auth.bearer_token(request.headers.get("authorization"))
        if presented is not None:
            return ("bearer", None) if config.tokens.verify(presented) else (None, None)
        s = sessions.get(request.cookies.get(auth.SESSION_COOKIE))
        return ("session", s) if s is not None else (None, None)

    Handler = Callable[[Request], Awaitable[Response]]

    def protected(api: bool = False) -> Callable[[Handler], Handler]:
        def deco(handler: Handler) -> Handler:
            @functools.wraps(handler)
            async def wrapper(request: Request) -> Response:
                how, session = identify(request)
                if how is None:
                    if api or request.method != "GET":
                        return JSONResponse({"detail": "missing or invalid token"}, status_code=401,
                                            headers=headers({"WWW-Authenticate": 'Bearer realm="mxt-console"'}))  # fmt: skip
                    nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    return RedirectResponse(f"/login?next={quote(nxt, safe='')}", status_code=303, headers=headers())
                request.scope["console_auth"] = how
                request.scope["console_session"] = session
                if request.method == "POST":
                    body = await request.body()
                    try:
                        form = _parse_form(body) if body else {}
                    except (MXTInputError, UnicodeDecodeError, ValueError):
                        return error_page(request, 400, "malformed form", api)
                    request.scope["console_form"] = form
                    if how == "session":
                        presented = request.headers.get(auth.CSRF_HEADER) or (form.get(auth.CSRF_FIELD) or [None])[0]
                        if not auth.csrf_ok(session, presented):
                            log.warning("POST %s refused: missing or wrong CSRF token", request.url.path)
                            return error_page(request, 403, "missing or invalid CSRF token", api)
                try:
                    return await handler(request)
                except NotServed as exc:
                    log.info("%s %s: not served (%s)", request.method, request.url.path, exc.message)
                    return error_page(request, 404, "not found", api)
                except MXTInputError as exc:
                    return error_page(request, 400, exc.message, api)

            return wrapper

        return deco

    # ---- login ------------------------------------------------------------------------
    async def login_get(request: Request) -> Response:
        pre = request.cookies.get(auth.PRELOGIN_COOKIE) or secrets.token_urlsafe(24)
        resp = render("login.html", request, login_csrf=sessions.login_csrf(pre),
                      next=_safe_next(request.query_params.get("next")), message=None)  # fmt: skip
        resp.set_cookie(auth.PRELOGIN_COOKIE, pre, httponly=True, samesite="strict", secure=config.secure_cookies,
                        path="/login", max_age=3600)  # fmt: skip
        return resp

    async def login_post(request: Request) -> Response:
        client = request.client.host if request.client else "?"
        if throttle.blocked(client):
            return error_page(request, 429, "too many failed logins: wait a minute", False)
        try:
            form = _parse_form(await request.body())
        except (MXTInputError, UnicodeDecodeError, ValueError):
            return error_page(request, 400, "malformed form", False)
        pre = request.cookies.get(auth.PRELOGIN_COOKIE)
        if not sessions.check_login_csrf(pre, (form.get(auth.CSRF_FIELD) or [None])[0]):
            return error_page(request, 403, "missing or invalid CSRF token (reload the login page)", False)
        nxt = _safe_next((form.get("next") or ["/"])[0])
        if not config.tokens.verify((form.get("token") or [""])[0].strip()):
            throttle.failed(client)
            log.warning("failed console login from %s", client)
            return render("login.html", request, status=401, login_csrf=sessions.login_csrf(pre or ""), next=nxt,
                          message="This token is not accepted.")  # fmt: skip
        throttle.succeeded(client)
        old = request.cookies.get(auth.SESSION_COOKIE)
        sessions.drop(old)  # a fresh identifier at every login (no session fixation)
        s = sessions.create()
        log.info("console login from %s", client)
        resp = RedirectResponse(nxt, status_code=303, headers=headers())
        resp.set_cookie(auth.SESSION_COOKIE, s.sid, httponly=True, samesite="strict", secure=config.secure_cookies, path="/")
        resp.delete_cookie(auth.PRELOGIN_COOKIE, path="/login")
        return resp

    @protected()
    async def logout(request: Request) -> Response:
        sessions.drop(request.cookies.get(auth.SESSION_COOKIE))
        resp = RedirectResponse("/login", status_code=303, headers=headers())
        resp.delete_cookie(auth.SESSION_COOKIE, path="/")
        return resp

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    # ---- runs ------------------------------------------------------------------------------
    def select_runs(params) -> tuple[list[RunSummary], dict[str, Any]]:
        runs = config.scanner.runs()
        statuses = sorted({r.status for r in runs})
        modes = sorted({r.mode for r in runs})
        status = params.get("status", "")
        mode = params.get("mode", "")
        q = params.get("q", "").strip().lower()
        sort = params.get("sort", "started")
        if sort not in SORT_KEYS:
            sort = "started"
        order = "asc" if params.get("order") == "asc" else "desc"
        sel = [r for r in runs if (not status or r.status == status) and (not mode or r.mode == mode)
               and (not q or q in r.obs_id.lower() or q in r.object.lower() or q in (r.collection or "").lower())]  # fmt: skip
        sel.sort(key=SORT_KEYS[sort], reverse=order == "desc")
        return sel, {"statuses": statuses, "modes": modes, "status": status, "mode": mode, "q": q, "sort": sort,
                     "order": order, "total": len(runs)}  # fmt: skip

    @protected()
    async def runs_page(request: Request) -> Response:
        sel, f = await run_in_threadpool(select_runs, request.query_params)
        counts: dict[str, int] = {}
        for r in sel:
            counts[r.status] = counts.get(r.status, 0) + 1
        return render("runs.html", request, runs=sel, f=f, counts=sorted(counts.items()))

    @protected(api=True)
    async def runs_api(request: Request) -> Response:
        sel, f = await run_in_threadpool(select_runs, request.query_params)
        return JSONResponse({"count": len(sel), "total": f["total"], "runs": [r.to_dict() for r in sel]}, headers=headers())

    def run_detail(key: str, runs: list[RunSummary]) -> dict[str, Any]:
        path = resolve_inside(config.root, key)
        run = next((r for r in runs if r.key == key), None)
        if run is None:
            raise NotServed(f"no run {key!r} under the root")
        import json

        def read(name: str) -> dict[str, Any]:
            try:
                doc = json.loads((path / name).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return {}
            return doc if isinstance(doc, dict) else {}

        if not run.published:  # a run that published nothing: its status record only
            st = read("processing_status.json")
            return {"run": run, "bricks": st.get("bricks", []), "caldb": [], "products": [], "previews": [],
                    "report_links": []}  # fmt: skip
        man, report = read("manifest.json"), read("run_report.json")
        bricks = report.get("bricks") or man.get("bricks") or []
        products = []
        for f in man.get("files", []):
            rel = str(f.get("path", ""))
            p = path / rel
            sha = str(f.get("sha256", ""))
            products.append({
                "path": rel, "href": f"{key}/{rel}", "role": f.get("role", ""), "port": f.get("port", ""),
                "kind": f.get("kind", "") or p.suffix.lstrip("."), "size": f.get("size"),
                "validation": checks.validation(p, sha), "fitsverify": checks.fitsverify(p, sha),
            })  # fmt: skip
        previews = [p for p in products if p["path"].lower().endswith(".png")]
        previews.sort(key=lambda p: (not p["path"].startswith("mxt_img_"), p["path"]))
        links = [p for p in products if p["path"] in ("run_report.html", "run_report.md", "run.log")]
        return {"run": run, "bricks": bricks, "caldb": report.get("caldb") or man.get("caldb") or [],
                "products": products, "previews": previews, "report_links": links,
                "target": man.get("target", {}), "versions": report.get("versions", {}),
                "timing": report.get("timing", {})}  # fmt: skip

    @protected()
    async def run_page(request: Request) -> Response:
        key = request.path_params["key"]
        runs = await run_in_threadpool(config.scanner.runs)
        detail = await run_in_threadpool(run_detail, key, runs)
        siblings = [r for r in runs if r.output_dir == detail["run"].output_dir and r.published]
        siblings.sort(key=lambda r: r.counter or 0)
        return render("run.html", request, key=key, siblings=siblings, **detail)

    @protected()
    async def file_get(request: Request) -> Response:
        rel = request.path_params["path"]
        p = resolve_inside(config.root, rel)
        if not p.is_file():
            raise NotServed(f"path {rel!r} is not a file under the root")
        ctype = mimetypes.guess_type(p.name)[0] or "application/octet-stream"
        inline = p.suffix.lower() in (".png", ".json", ".md", ".log", ".txt", ".reg") or p.name == "run_report.html"
        h = headers()
        if p.suffix.lower() == ".html":
            h["Content-Security-Policy"] = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"
        if p.suffix.lower() in (".md", ".log", ".reg"):
            ctype = "text/plain; charset=utf-8"
        return FileResponse(p, media_type=ctype, headers=h, content_disposition_type="inline" if inline else "attachment",
                            filename=p.name)  # fmt: skip

    # ---- reprocess ---------------------------------------------------------------------------
    @protected()
    async def reprocess_page(request: Request) -> Response:
        runs = [r for r in await run_in_threadpool(config.scanner.runs) if r.published]
        runs.sort(key=lambda r: (r.output_dir, r.obs_id, r.counter or 0))
        pre = request.query_params.getlist("collection")
        return render("reprocess.html", request, runs=runs, caldbs=list(config.jobs.caldbs.values()),
                      jobs=config.jobs.jobs(), preselected=set(pre), backend=config.jobs.backend, message=None)  # fmt: skip

    def launch(form: dict[str, list[str]]) -> list[tuple[Any, bool]]:
        keys = form.get("collection") or []
        if not keys:
            raise MXTInputError("choose at least one collection")
        caldb = (form.get("caldb") or ["default"])[0]
        return [config.jobs.launch(k, caldb) for k in keys]

    @protected()
    async def reprocess_post(request: Request) -> Response:
        launched = launch(request.scope["console_form"])
        target = f"/jobs/{launched[0][0].id}" if len(launched) == 1 else "/reprocess#jobs"
        return RedirectResponse(target, status_code=303, headers=headers())

    @protected(api=True)
    async def reprocess_api(request: Request) -> Response:
        launched = launch(request.scope["console_form"])
        return JSONResponse({"jobs": [dict(j.to_dict(), started_now=new) for j, new in launched]}, status_code=202,
                            headers=headers())  # fmt: skip

    def job_progress(job) -> list[dict[str, Any]]:
        """Bricks done so far by the run in the job's output folder (its status record)."""
        import json

        src = config.root / job.source
        try:
            st = json.loads((src.parent / "processing_status.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        if st.get("status") != "RUNNING":
            return []
        return [{"name": b.get("name"), "status": b.get("status"), "elapsed_s": b.get("elapsed_s")}
                for b in st.get("bricks", [])]  # fmt: skip

    @protected(api=True)
    async def job_api(request: Request) -> Response:
        job = config.jobs.get(request.path_params["job_id"])
        if job is None:
            return JSONResponse({"detail": "no such job"}, status_code=404, headers=headers())
        return JSONResponse(dict(job.to_dict(), progress=job_progress(job)), headers=headers())

    def job_diff(job) -> Any:
        if job.id in diff_cache:
            return diff_cache[job.id]
        if job.state != "DONE" or not job.new_key or job.new_key == job.source:
            return None

        d = diff_collections(resolve_inside(config.root, job.new_key), resolve_inside(config.root, job.source))
        diff_cache[job.id] = d
        return d

    @protected()
    async def job_page(request: Request) -> Response:
        job = config.jobs.get(request.path_params["job_id"])
        if job is None:
            return error_page(request, 404, "no such job (jobs are kept until the console stops)", False)
        diff = await run_in_threadpool(job_diff, job)
        return render("job.html", request, job=job, j=job.to_dict(), result=job.result or {}, diff=diff,
                      progress=job_progress(job))  # fmt: skip

    # ---- harness ---------------------------------------------------------------------------
    @protected()
    async def harness_page(request: Request) -> Response:
        rep = config.reports
        charts = await run_in_threadpool(rep.charts)
        return render("harness.html", request, markdown=rep.regression_markdown(), has_html=rep.regression_html() is not None,
                      charts=charts, reports=rep.folder is not None)  # fmt: skip

    @protected()
    async def harness_report(request: Request) -> Response:
        p = config.reports.regression_html()
        if p is None:
            return error_page(request, 404, "no regression report yet (python -m harness run)", False)
        h = headers({"Content-Security-Policy": "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"})
        return FileResponse(p, media_type="text/html", headers=h)

    routes = [
        Route("/health", health),
        Route("/login", login_get, methods=["GET"]),
        Route("/login", login_post, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/", runs_page),
        Route("/run/{key:path}", run_page),
        Route("/files/{path:path}", file_get),
        Route("/reprocess", reprocess_page, methods=["GET"]),
        Route("/reprocess", reprocess_post, methods=["POST"]),
        Route("/jobs/{job_id}", job_page),
        Route("/harness", harness_page),
        Route("/harness/regression.html", harness_report),
        Route("/api/runs", runs_api),
        Route("/api/jobs/{job_id}", job_api),
        Route("/api/reprocess", reprocess_api, methods=["POST"]),
        Mount("/static", StaticFiles(directory=_HERE / "static"), name="static"),
    ]
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        config.jobs.shutdown()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.config = config
    app.state.started = time.time()
    return app
