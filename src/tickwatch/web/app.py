"""The web app: JSON API (OpenAPI at /docs), live anomaly stream, /health, /metrics, dashboards.

Every time range is relative to the newest data in the store (see `queries`), selected by
`range=24h` (or `7d`, `90m`, `all`), or fixed by `start`/`end`. The dashboards are static files
(`static/`) that call this API; ECharts is served with them, so the page works offline.

The app reads with GETs: lists are bounded pages with keyset cursors (`paging`), and what
guards every request (allowed hosts, CSP, slow clients) is in `guard`. The only writes are the
alert workflow's POSTs (`workflow`), which need API_TOKEN.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import orjson
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.encoders import jsonable_encoder
from fastapi.responses import FileResponse, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.middleware.trustedhost import TrustedHostMiddleware

from tickwatch import __version__
from tickwatch.bus.memory import MemoryBus
from tickwatch.clock import utc_now
from tickwatch.config import Settings
from tickwatch.engine.divergence import Divergence
from tickwatch.errors import ConfigError
from tickwatch.model import AnomalyType, Severity
from tickwatch.ops.checks import worst
from tickwatch.store import provenance
from tickwatch.web.alerts import alert_page, episode_windows
from tickwatch.web.divergences import divergence_list
from tickwatch.web.docs import add_docs
from tickwatch.web.drill import drill
from tickwatch.web.guard import SecurityHeaders, SendTimeout, allowed_hosts
from tickwatch.web.health import ActingCheck, Checks, health_report
from tickwatch.web.live import Hub, event_id, follow_bus, missed, poll_store
from tickwatch.web.metrics import CONTENT_TYPE, PipelineCollector, registry_for, render
from tickwatch.web.models import (
    AlertPage,
    AnomalyOut,
    AnomalyPage,
    Drill,
    EpisodeWindow,
    LatestPrice,
    Summary,
    SymbolInfo,
    VolSeries,
    WindowPage,
)
from tickwatch.web.paging import BadCursor
from tickwatch.web.pipeline_view import PipelineView
from tickwatch.web.queries import Reader, Span, parse_range
from tickwatch.web.store_metrics import StoreCollector
from tickwatch.web.storeview import open_view
from tickwatch.web.workflow import attach_states, workflow_router

STATIC = Path(__file__).parent / "static"
DASHBOARDS = ("overview", "alerts", "volatility")
HEARTBEAT_SECONDS = 15.0
MAX_OFFSET = 2**53  # SQL integers are 64-bit; JSON clients are exact to 2**53
MAX_WINDOW_PAGE = 10_000  # windows per /api/windows page (~4 MB of JSON)


class Meta(BaseModel):
    version: str
    simulated: bool
    newest: datetime | None
    symbols: list[SymbolInfo]
    window_minutes: int
    z_threshold: float
    severity_medium: float
    severity_high: float
    api_writes: bool = False
    """Whether API_TOKEN is set: the alert workflow's POSTs accept a Bearer token."""


RangeParam = Annotated[
    str, Query(description="Length back from the newest data: 90m, 6h, 24h, 7d or all")
]
Symbols = Annotated[list[str], Query(alias="symbol", description="Repeat to select several")]
Cursor = Annotated[
    str | None, Query(max_length=2048, description="next_cursor of the previous page")
]


def anomaly_event(anomaly: AnomalyOut) -> ServerSentEvent:
    return ServerSentEvent(
        event="anomaly", id=event_id(anomaly), data=anomaly.model_dump(mode="json")
    )


def span_of(
    request: Request,
    range: RangeParam = "24h",
    start: Annotated[datetime | None, Query(description="ISO 8601 with offset")] = None,
    end: Annotated[datetime | None, Query(description="ISO 8601 with offset, exclusive")] = None,
) -> Span:
    """The requested range: explicit start/end, or `range` back from the newest data."""
    for name, moment in (("start", start), ("end", end)):
        if moment is not None and moment.tzinfo is None:
            raise HTTPException(422, f"{name}: add a UTC offset, e.g. 2024-03-04T10:00:00Z")
    try:
        length = parse_range(range)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    reader: Reader = request.app.state.reader
    return reader.span(length, start, end)


SpanDep = Annotated[Span, Depends(span_of)]


def create_app(
    settings: Settings,
    *,
    simulated: bool = False,
    pipeline: PipelineView | None = None,
    poll_seconds: float = 1.0,
    clock: Callable[[], datetime] = utc_now,
) -> FastAPI:
    """The app over `settings.database_url`; `pipeline` is the running runtime, if any.

    With an embedded pipeline, the live stream follows its in-process bus; otherwise (no
    pipeline, or Kafka, where the Spark job detects and writes the store) it polls the store.
    """
    store = open_view(settings.database_url)

    def holds_simulated() -> bool:
        """The caller knows (a simulated run), or the store's provenance says so (any store
        a simulated run or a replay of simulator output wrote: store/provenance.py)."""
        return simulated or provenance.is_simulated(store.engine)

    reader = Reader(store.engine)
    checks = Checks(settings, pipeline, clock)
    hub = Hub()
    registry = registry_for(
        PipelineCollector(pipeline, lambda: hub.clients, clock),
        StoreCollector(store.engine, clock),
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        hub.bind(asyncio.get_running_loop())
        stop = threading.Event()
        task = None
        if pipeline is not None and isinstance(pipeline.bus, MemoryBus):
            follow_bus(pipeline.bus, hub, stop)
        else:
            task = asyncio.create_task(poll_store(reader, hub, poll_seconds))
        try:
            yield
        finally:
            stop.set()
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            store.close()

    app = FastAPI(
        title="tickwatch",
        version=__version__,
        summary="Market anomalies: 5-minute bars scored against each symbol's own history.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(SendTimeout, seconds=settings.web_send_timeout)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(settings))
    app.state.reader = reader
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    add_docs(app)

    @app.get("/api/meta", response_model=Meta, tags=["api"])
    def meta() -> Meta:
        """Symbols, the newest data time (the 'now' of every range) and the thresholds."""
        return Meta(
            version=__version__,
            simulated=holds_simulated(),
            newest=reader.newest(),
            symbols=reader.symbols(),
            window_minutes=settings.window_minutes,
            z_threshold=settings.z_threshold,
            severity_medium=settings.severity_medium,
            severity_high=settings.severity_high,
            api_writes=bool(settings.api_token.get_secret_value()) and not store.read_only,
        )

    @app.get("/api/anomalies", response_model=AnomalyPage, tags=["api"])
    def anomalies(
        span: SpanDep,
        symbol: Symbols = [],  # noqa: B006 (FastAPI copies defaults)
        anomaly_type: Annotated[list[AnomalyType], Query(alias="type")] = [],  # noqa: B006
        severity: list[Severity] = Query([]),  # noqa: B008
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
        cursor: Cursor = None,
    ) -> AnomalyPage:
        """Anomalies, newest window first; filter by symbol, type, severity and time.
        Page with `cursor` (the previous page's `next_cursor`): stable while rows arrive."""
        try:
            return reader.anomalies(span, symbol, anomaly_type, severity, limit, offset, cursor)
        except BadCursor as exc:
            raise HTTPException(422, str(exc)) from None

    @app.get("/api/windows", response_model=WindowPage, tags=["api"])
    def windows(
        span: SpanDep,
        symbol: Symbols = [],  # noqa: B006
        limit: Annotated[int, Query(ge=1, le=MAX_WINDOW_PAGE)] = 5000,
        cursor: Cursor = None,
    ) -> WindowPage:
        """5-minute bars with features and baselines, oldest first (then by symbol), one
        page at a time: follow `next_cursor` until it is null."""
        try:
            return reader.windows(span, symbol, limit, cursor)
        except BadCursor as exc:
            raise HTTPException(422, str(exc)) from None

    @app.get("/api/alerts", response_model=AlertPage, tags=["api"])
    def alert_list(
        span: SpanDep,
        symbol: Symbols = [],  # noqa: B006
        kind: Annotated[list[Literal["market", "data_fault"]], Query()] = [],  # noqa: B006
        severity: Annotated[list[Severity], Query(description="peak severity")] = [],  # noqa: B006
        open_only: Annotated[bool, Query(alias="open", description="only open episodes")] = False,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Cursor = None,
    ) -> AlertPage:
        """Alert episodes overlapping the range, newest opening first: one row per episode
        with its summary. Page with `cursor` (the previous page's `next_cursor`)."""
        try:
            page = alert_page(
                store.engine,
                span,
                symbol,
                kind,
                [s.value for s in severity],
                open_only,
                limit,
                cursor,
            )
        except BadCursor as exc:
            raise HTTPException(422, str(exc)) from None
        attach_states(store.engine, page.items, clock())
        return page

    @app.get("/api/alerts/{alert_id}/windows", response_model=list[EpisodeWindow], tags=["api"])
    def alert_windows(
        alert_id: Annotated[str, PathParam(max_length=64)],
    ) -> list[EpisodeWindow]:
        """The windows of one episode, oldest first, with z-scores and per-window anomalies
        (at most 1000)."""
        found = episode_windows(store.engine, alert_id)
        if found is None:
            raise HTTPException(404, f"no alert {alert_id!r}: take ids from /api/alerts")
        return found

    @app.get("/api/alerts/{alert_id}/drill", response_model=Drill, tags=["api"])
    def alert_drill(alert_id: Annotated[str, PathParam(max_length=64)]) -> Drill:
        """The alert's symbol an hour either side of the episode (candles, volume, return
        baseline, the episode's windows marked) and why it fired: per anomaly its feature,
        value with unit, baseline, z and how rare such a z is for the symbol."""
        found = drill(store.engine, alert_id, settings.window_minutes)
        if found is None:
            raise HTTPException(404, f"no alert {alert_id!r}: take ids from /api/alerts")
        attach_states(store.engine, [found.alert], clock())
        return found

    @app.get("/api/divergences", response_model=list[Divergence], tags=["api"])
    def divergence_rows(
        span: SpanDep,
        symbol: Symbols = [],  # noqa: B006
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> list[Divergence]:
        """Cross-venue divergences (one asset, two venues, a gap over DIVERGENCE_BPS for
        DIVERGENCE_SECONDS), newest first, with the venue that looks off and whether it is a
        data fault or a real dislocation (docs/DETECTION.md)."""
        return divergence_list(store.engine, span, symbol, limit)

    @app.get("/api/prices/latest", response_model=list[LatestPrice], tags=["api"])
    def latest_prices(span: SpanDep) -> list[LatestPrice]:
        """Latest close per symbol and its change over the range."""
        return reader.latest_prices(span)

    @app.get("/api/summary", response_model=Summary, tags=["api"])
    def summary(span: SpanDep, symbol: Symbols = []) -> Summary:  # noqa: B006
        """Counts by type, severity, symbol, asset type and hour; z-score histogram."""
        return reader.summary(span, symbol)

    @app.get("/api/volatility", response_model=list[VolSeries], tags=["api"])
    def volatility(span: SpanDep, symbol: Symbols = []) -> list[VolSeries]:  # noqa: B006
        """Rolling relative volatility (% of price, 1-hour mean) per symbol."""
        return reader.volatility(span, symbol)

    @app.get("/api/stream", response_class=EventSourceResponse, tags=["api"])
    async def stream(
        request: Request,
        last_event_id: Annotated[
            str | None,
            Header(max_length=512, description="sent by a reconnecting browser: resume after it"),
        ] = None,
    ) -> AsyncIterator[ServerSentEvent]:
        """Server-sent events: `anomaly` with one anomaly as JSON, as soon as it is detected.
        Each event has an id; reconnecting with `Last-Event-ID` first replays what was
        detected since (at most 500)."""
        queue = hub.subscribe()  # before the replay, so nothing falls in between
        replayed: set[str] = set()
        try:
            yield ServerSentEvent(comment="connected", retry=2000)
            if last_event_id:
                for anomaly in await asyncio.to_thread(missed, reader, last_event_id):
                    replayed.add(event_id(anomaly))
                    yield anomaly_event(anomaly)
            while not await request.is_disconnected():
                try:
                    anomaly = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    yield ServerSentEvent(comment="heartbeat")
                    continue
                if event_id(anomaly) not in replayed:
                    yield anomaly_event(anomaly)
        finally:
            hub.unsubscribe(queue)

    @app.get("/health", tags=["ops"])
    def health() -> Response:
        """ok; degraded (a source, task or pipeline check is failing: see /health/checks);
        down (the store cannot be read: 503)."""
        body = health_report(store, pipeline, holds_simulated(), checks.run(None))
        status = 503 if body["status"] == "down" else 200
        masked = settings.mask(orjson.dumps(body).decode())  # errors may echo a key
        return Response(masked, status_code=status, media_type="application/json")

    @app.get("/health/checks", tags=["ops"])
    def health_checks(
        name: Annotated[list[str] | None, Query(description="checks or groups")] = None,
    ) -> Response:
        """The read-only checks of `tickwatch check` (default: the pipeline group); 503 when
        one fails. Checks that change files (checkpoints, quality-report) are refused (403):
        run them with `tickwatch check`."""
        try:
            results = checks.run(name)
        except ActingCheck as exc:
            raise HTTPException(403, str(exc)) from None
        except ConfigError as exc:
            raise HTTPException(400, str(exc)) from None
        verdict = worst(results)
        body = {"verdict": verdict.value, "checks": [r.as_dict() for r in results]}
        masked = settings.mask(orjson.dumps(jsonable_encoder(body)).decode())
        status = 503 if verdict.value == "fail" else 200
        return Response(masked, status_code=status, media_type="application/json")

    @app.get("/metrics", tags=["ops"])
    def metrics() -> Response:
        """Prometheus text format."""
        return Response(render(registry), media_type=CONTENT_TYPE)

    app.include_router(workflow_router(settings, store, clock))

    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.get("/", include_in_schema=False)(page)
    for name in DASHBOARDS:
        app.get(f"/{name}", include_in_schema=False)(page)
    return app
