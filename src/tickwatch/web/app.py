"""The web app: JSON API (OpenAPI at /docs), live anomaly stream, /health, /metrics, dashboards.

Every time range is relative to the newest data in the store (see `queries`), selected by
`range=24h` (or `7d`, `90m`, `all`), or fixed by `start`/`end`. The dashboards are static files
(`static/`) that call this API; ECharts is served with them, so the page works offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from tickwatch import __version__
from tickwatch.bus.memory import MemoryBus
from tickwatch.clock import utc_now
from tickwatch.config import Settings
from tickwatch.errors import ConfigError
from tickwatch.model import AnomalyType, Severity
from tickwatch.ops.checks import OpsContext, expand, run_checks, worst
from tickwatch.store import SqlStore
from tickwatch.store.sql import clean_market_data
from tickwatch.web.live import Hub, follow_bus, poll_store
from tickwatch.web.metrics import CONTENT_TYPE, PipelineCollector, registry_for, render
from tickwatch.web.queries import (
    AnomalyPage,
    LatestPrice,
    Reader,
    Span,
    Summary,
    SymbolInfo,
    VolSeries,
    WindowOut,
    parse_range,
)
from tickwatch.web.state import PipelineView

STATIC = Path(__file__).parent / "static"
DASHBOARDS = ("overview", "alerts", "volatility")
HEARTBEAT_SECONDS = 15.0
MAX_OFFSET = 2**53  # SQL integers are 64-bit; JSON clients are exact to 2**53


class Meta(BaseModel):
    version: str
    simulated: bool
    newest: datetime | None
    symbols: list[SymbolInfo]
    window_minutes: int
    z_threshold: float
    severity_medium: float
    severity_high: float


RangeParam = Annotated[
    str, Query(description="Length back from the newest data: 90m, 6h, 24h, 7d or all")
]
Symbols = Annotated[list[str], Query(alias="symbol", description="Repeat to select several")]


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
    store = SqlStore(settings.database_url)
    reader = Reader(store.engine)
    hub = Hub()
    registry = registry_for(PipelineCollector(pipeline, lambda: hub.clients, clock))

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
    )
    app.state.reader = reader
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/meta", response_model=Meta, tags=["api"])
    def meta() -> Meta:
        """Symbols, the newest data time (the 'now' of every range) and the thresholds."""
        return Meta(
            version=__version__,
            simulated=simulated,
            newest=reader.newest(),
            symbols=reader.symbols(),
            window_minutes=settings.window_minutes,
            z_threshold=settings.z_threshold,
            severity_medium=settings.severity_medium,
            severity_high=settings.severity_high,
        )

    @app.get("/api/anomalies", response_model=AnomalyPage, tags=["api"])
    def anomalies(
        span: SpanDep,
        symbol: Symbols = [],  # noqa: B006 (FastAPI copies defaults)
        anomaly_type: Annotated[list[AnomalyType], Query(alias="type")] = [],  # noqa: B006
        severity: list[Severity] = Query([]),  # noqa: B008
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> AnomalyPage:
        """Anomalies, newest window first; filter by symbol, type, severity and time."""
        return reader.anomalies(span, symbol, anomaly_type, severity, limit, offset)

    @app.get("/api/windows", response_model=list[WindowOut], tags=["api"])
    def windows(span: SpanDep, symbol: Symbols = []) -> list[WindowOut]:  # noqa: B006
        """5-minute bars with features and baselines, per symbol oldest first."""
        return reader.windows(span, symbol)

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
    async def stream(request: Request) -> AsyncIterator[ServerSentEvent]:
        """Server-sent events: `anomaly` with one anomaly as JSON, as soon as it is detected."""
        queue = hub.subscribe()
        try:
            yield ServerSentEvent(comment="connected", retry=2000)
            while not await request.is_disconnected():
                try:
                    anomaly = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    yield ServerSentEvent(comment="heartbeat")
                    continue
                yield ServerSentEvent(event="anomaly", data=anomaly.model_dump(mode="json"))
        finally:
            hub.unsubscribe(queue)

    @app.get("/health", tags=["ops"])
    def health() -> Response:
        """ok, degraded (a source or task is failing) or down (the store cannot be read: 503)."""
        body = health_report(store, pipeline, simulated)
        status = 503 if body["status"] == "down" else 200
        masked = settings.mask(orjson.dumps(body).decode())  # errors may echo a key
        return Response(masked, status_code=status, media_type="application/json")

    @app.get("/health/checks", tags=["ops"])
    def health_checks(
        name: Annotated[list[str] | None, Query(description="checks or groups")] = None,
    ) -> JSONResponse:
        """The operations checks of `tickwatch check` (default: the pipeline group);
        503 when one fails."""
        try:
            names = expand(name or ["pipeline"])
        except ConfigError as exc:
            raise HTTPException(400, str(exc)) from None
        tasks = pipeline.supervisor.tasks if pipeline is not None else None
        ctx = OpsContext.from_settings(settings, now=clock(), tasks=tasks)
        try:
            results = run_checks(names, ctx)
        finally:
            ctx.close()
        verdict = worst(results)
        body = {"verdict": verdict.value, "checks": [r.as_dict() for r in results]}
        return JSONResponse(
            jsonable_encoder(body), status_code=503 if verdict.value == "fail" else 200
        )

    @app.get("/metrics", tags=["ops"])
    def metrics() -> Response:
        """Prometheus text format."""
        return Response(render(registry), media_type=CONTENT_TYPE)

    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.get("/", include_in_schema=False)(page)
    for name in DASHBOARDS:
        app.get(f"/{name}", include_in_schema=False)(page)
    return app


def health_report(
    store: SqlStore, pipeline: PipelineView | None, simulated: bool
) -> dict[str, Any]:
    status = "ok"
    store_part: dict[str, Any] = {"url": store.engine_url_masked, "ok": True}
    try:
        with store.engine.connect() as conn:
            conn.execute(select(clean_market_data.c.symbol).limit(1)).all()
    except SQLAlchemyError as exc:
        status = "down"
        store_part.update(ok=False, error=str(exc).splitlines()[0])
    body: dict[str, Any] = {"status": status, "simulated": simulated, "store": store_part}
    if pipeline is None:
        body["pipeline"] = None
        return body
    tasks = [
        {
            "name": t.name,
            "state": t.state,
            "restarts": t.restarts,
            "last_error": t.last_error,
            "last_error_at": _iso(t.last_error_at),
        }
        for t in pipeline.supervisor.tasks.values()
    ]
    sources = [
        {
            "name": s.name,
            "state": s.health.state,
            "message": s.health.message,
            "last_success": _iso(s.health.last_success),
            "figures": s.health.figures,
        }
        for s in pipeline.sources
    ]
    failing = any(t["state"] == "backoff" for t in tasks) or any(
        s["state"] != "ok" for s in sources
    )
    if status == "ok" and failing:
        body["status"] = "degraded"
    body["pipeline"] = {"tasks": tasks, "counters": pipeline.counters.as_dict()}
    body["sources"] = sources
    return body


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
