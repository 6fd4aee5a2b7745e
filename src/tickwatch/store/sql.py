"""The SQL store (SQLAlchemy Core): SQLite by default, PostgreSQL for the distributed stack.

Tables `clean_market_data` (key symbol, window_start), `market_anomalies` (key symbol,
window_start, anomaly_type) and `dead_letters` (key fingerprint of kind, reason and payload).
Every write is an upsert on the key, so a replay or a restart never duplicates a row.
On SQLite, timestamps are ISO 8601 UTC text (sortable, readable by any tool); on PostgreSQL
they are `timestamptz`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import numpy as np
import pyarrow as pa
from sqlalchemy import (
    Column,
    DateTime,
    Dialect,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.types import TypeDecorator, TypeEngine

from tickwatch.errors import StoreError
from tickwatch.model import (
    CLEAN_MARKET_DATA,
    DEAD_LETTERS,
    MARKET_ANOMALIES,
    AssetType,
    Feature,
    Rejected,
    Score,
    Window,
)
from tickwatch.model import Anomaly as AnomalyRow
from tickwatch.store.rows import anomaly_values, window_values
from tickwatch.store.writer import Writer

log = logging.getLogger(__name__)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes: ISO 8601 text on SQLite, timestamptz elsewhere."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(32))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise StoreError(f"naive datetime {value} reached the store; use UTC-aware times")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.isoformat(timespec="milliseconds")
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.astimezone(UTC)


metadata = MetaData()

_feature_columns = [
    Column(f"{feature.value}_{stat}", Float) for feature in Feature for stat in ("mean", "std", "z")
]

clean_market_data = Table(
    CLEAN_MARKET_DATA,
    metadata,
    Column("symbol", String(64), primary_key=True),
    Column("window_start", UtcDateTime, primary_key=True),
    Column("window_end", UtcDateTime, nullable=False),
    Column("asset_type", String(8), nullable=False),
    Column("open", Float, nullable=False),
    Column("high", Float, nullable=False),
    Column("low", Float, nullable=False),
    Column("close", Float, nullable=False),
    Column("volume", Float),
    Column("tick_count", Integer, nullable=False),
    Column("vwap", Float),
    Column("price_return_pct", Float, nullable=False),
    Column("volatility", Float),
    *_feature_columns,
    Index("ix_clean_window_start", "window_start"),
    # dashboards split stocks from crypto over a time range
    Index("ix_clean_asset_type_window_start", "asset_type", "window_start"),
)

market_anomalies = Table(
    MARKET_ANOMALIES,
    metadata,
    Column("symbol", String(64), primary_key=True),
    Column("window_start", UtcDateTime, primary_key=True),
    Column("anomaly_type", String(24), primary_key=True),
    Column("window_end", UtcDateTime, nullable=False),
    Column("asset_type", String(8), nullable=False),
    Column("value", Float, nullable=False),
    Column("mean", Float, nullable=False),
    Column("std", Float, nullable=False),
    Column("z_score", Float, nullable=False),
    Column("severity", String(8), nullable=False),
    Column("detected_at", UtcDateTime, nullable=False),
    Index("ix_anomalies_window_start", "window_start"),
    Index("ix_anomalies_detected_at", "detected_at"),
    # dashboards count anomalies per type and per severity over a time range
    Index("ix_anomalies_type_window_start", "anomaly_type", "window_start"),
    Index("ix_anomalies_severity_window_start", "severity", "window_start"),
)

dead_letters = Table(
    DEAD_LETTERS,
    metadata,
    Column("fingerprint", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("source", String(64)),
    Column("symbol", String(64)),
    Column("payload", Text, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Index("ix_dead_letters_received_at", "received_at"),
)


def _fingerprint(rejected: Rejected) -> str:
    text = "\x1f".join((rejected.kind, rejected.reason, rejected.payload))
    return hashlib.sha256(text.encode()).hexdigest()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    # 64 MB of page cache (SQLite's default is 2 MB): a replay's upserts land all over the
    # primary key's B-tree, and re-reading its pages from the OS cost a fifth of the writes
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


def parse_url(url: str) -> URL:
    """STORE_URL as an SQLAlchemy URL.

    A password may hold a raw `@` (`postgresql://user:p@ss@host/db`): the user info ends at the
    LAST `@` of the authority (urllib's rule), where SQLAlchemy's own parser stops at the first
    and would take the rest of the password for the host name, which then shows in every
    "cannot resolve host" error. Percent escapes are decoded as SQLAlchemy decodes them. A plain
    `postgresql://` URL means psycopg 3 (the driver tickwatch ships), not psycopg2. Errors
    never echo the URL: it holds the password.
    """
    if not url.startswith(("postgresql:", "postgres:", "postgresql+")):
        return make_url(url)
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise StoreError("STORE_URL: the port is not a number between 0 and 65535") from None
    scheme = "postgresql+psycopg" if parts.scheme in ("postgresql", "postgres") else parts.scheme
    query: dict[str, list[str]] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        query.setdefault(key, []).append(value)
    return URL.create(
        scheme,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        host=parts.hostname or None,
        port=port,
        database=unquote(parts.path.removeprefix("/")) or None,
        query={k: v[0] if len(v) == 1 else tuple(v) for k, v in query.items()},
    )


def masked_url(url: str) -> str:
    """`url` for messages and logs: the password as ***, whatever characters it holds."""
    try:
        return parse_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparseable URL is never echoed: it may hold a password
        return "STORE_URL (unparseable, not shown)"


def connect(url: str) -> Engine:
    """An SQLAlchemy engine for `url` (see `parse_url`); SQLite files get WAL mode and their
    folder."""
    if url.startswith("sqlite:///") and not url.endswith(":memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parse_url(url), pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


class SqlStore:
    """Upserting store of windows, anomalies and dead letters.

    `bulk=True` (a replay): when `clean_market_data` is empty at the start, its secondary
    indexes are built by `close` after the load instead of kept up row by row (one sort at
    the end instead of a B-tree insert per row and index). A process that dies before `close`
    leaves them missing; the next open builds them, so every store has its indexes.
    A bulk store also applies what `submit` hands it on a writer thread (`store/writer.py`),
    so the caller scores the next block while SQLite writes; its reads flush first.
    """

    def __init__(self, url: str, bulk: bool = False) -> None:
        self.url = url
        self._deferred: list[Index] = []
        try:
            self.engine = connect(url)
            if self.engine.dialect.name == "postgresql":
                from tickwatch.store import migrate  # Alembic: loaded for PostgreSQL only

                migrate.upgrade(self.engine)  # tables come from the migrations, never create_all
            else:
                metadata.create_all(self.engine)
            with self.engine.begin() as conn:
                for index in clean_market_data.indexes:
                    index.create(conn, checkfirst=True)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open store {self.engine_url_masked}: {exc}") from exc
        dialect = self.engine.dialect.name
        self._insert: Callable[[Table], sqlite.Insert | postgresql.Insert]
        if dialect == "sqlite":
            self._insert = sqlite.insert
        elif dialect == "postgresql":
            self._insert = postgresql.insert
        else:
            raise StoreError(
                f"STORE_URL: unsupported database {dialect!r}; use sqlite or postgresql"
            )
        self._fast: tuple[str, str] | None = None
        if dialect == "sqlite":
            self._fast = (
                self._compiled(clean_market_data, ()),
                self._compiled(market_anomalies, ("detected_at",)),
            )
        self._writer: Writer | None = None
        if bulk:
            self._defer_indexes()
            self._writer = Writer("store-writer")

    def submit(self, write: Callable[..., object], *args: Any) -> Future[None]:
        """Apply `write(*args)` (a write method of this store): on the writer thread of a
        bulk store, else at once. Its future says whether it was applied; at once, a failure
        also raises here, as the write itself raises."""
        if self._writer is not None:
            return self._writer.submit(write, *args)
        write(*args)
        done: Future[None] = Future()
        done.set_result(None)
        return done

    def flush(self) -> None:
        """Wait for every submitted write; raise a failure no caller has seen yet."""
        if self._writer is not None:
            self._writer.flush()

    def _defer_indexes(self) -> None:
        """Drop clean_market_data's secondary indexes if the table is empty (`close` builds
        them). A store that cannot (a full disk, corrupt pages) keeps them: its writes will
        report the fault."""
        deferred = sorted(clean_market_data.indexes, key=lambda i: str(i.name))
        try:
            with self.engine.begin() as conn:
                if conn.execute(select(clean_market_data.c.symbol).limit(1)).first() is not None:
                    return
                for index in deferred:
                    index.drop(conn)
        except SQLAlchemyError as exc:
            log.debug("indexes kept during the load: %s", exc)
            return
        self._deferred = deferred

    @property
    def engine_url_masked(self) -> str:
        return masked_url(self.url)

    def _statement(self, table: Table, keep: tuple[str, ...]) -> sqlite.Insert | postgresql.Insert:
        """`INSERT ... ON CONFLICT (key) DO UPDATE` of every column but the key and `keep`."""
        keys = [c.name for c in table.primary_key.columns]
        statement = self._insert(table)
        update = {
            c.name: statement.excluded[c.name]
            for c in table.columns
            if c.name not in keys and c.name not in keep
        }
        return statement.on_conflict_do_update(index_elements=keys, set_=update)

    def _compiled(self, table: Table, keep: tuple[str, ...]) -> str:
        """The upsert as SQLite text with one `?` per column in table order (built once)."""
        names = [c.name for c in table.columns]
        compiled = self._statement(table, keep).compile(
            dialect=self.engine.dialect, column_keys=names
        )
        assert compiled.positiontup == names, compiled.positiontup
        return compiled.string

    def _upsert(
        self, table: Table, rows: Sequence[dict[str, Any]], keep: tuple[str, ...] = ()
    ) -> None:
        if not rows:
            return
        self._execute(table, len(rows), self._statement(table, keep), list(rows))

    def _execute(self, table: Table, size: int, statement: Any, rows: Any) -> None:
        try:
            with self.engine.begin() as conn:
                if isinstance(statement, str):
                    conn.exec_driver_sql(statement, rows)
                else:
                    conn.execute(statement, rows)
        except SQLAlchemyError as exc:
            cause = getattr(exc, "orig", None) or exc
            raise StoreError(
                f"cannot write {size} rows to {table.name} in {self.engine_url_masked}: {cause}"
            ) from exc

    def write(
        self,
        windows: Iterable[Window] | pa.Table,
        anomalies: Iterable[AnomalyRow],
        rejected: Iterable[Rejected] = (),
    ) -> None:
        """Upsert one batch; anomalies keep the time they were first detected. `windows` are
        `Window` objects or their `as_row` rows as an Arrow table (the lake's schema).

        On SQLite, windows and anomalies go as plain tuples through one prepared statement
        (`executemany` on the driver): the values SQLAlchemy's column types would bind (ISO
        text for times, enum values as text), without building a dict and running the type
        processors for every row, which cost about three quarters of a replay's store time.
        """
        if self._fast is None:
            if isinstance(windows, pa.Table):
                self._upsert(clean_market_data, windows.to_pylist())
            else:
                self._upsert(clean_market_data, [w.as_row() for w in windows])
            self._upsert(market_anomalies, [a.as_row() for a in anomalies], keep=("detected_at",))
        else:
            clean_sql, anomaly_sql = self._fast
            time = _TimeText(self.engine.dialect)
            rows = (
                _sqlite_values(windows, [c.name for c in clean_market_data.columns])
                if isinstance(windows, pa.Table)
                else [window_values(w, time) for w in windows]
            )
            if rows:
                self._execute(clean_market_data, len(rows), clean_sql, rows)
            rows = [anomaly_values(a, time) for a in anomalies]
            if rows:
                self._execute(market_anomalies, len(rows), anomaly_sql, rows)
        letters = {
            _fingerprint(r): {
                "fingerprint": _fingerprint(r),
                "kind": r.kind,
                "reason": r.reason,
                "source": r.source,
                "symbol": r.symbol,
                "payload": r.payload,
                "received_at": r.received_at,
            }
            for r in rejected
        }
        self._upsert(dead_letters, list(letters.values()), keep=("received_at",))

    def recent_windows(self, lookback: int) -> list[Window]:
        """The last `lookback` windows of every symbol, oldest first (to restore baselines)."""
        rank = (
            func.row_number()
            .over(
                partition_by=clean_market_data.c.symbol,
                order_by=clean_market_data.c.window_start.desc(),
            )
            .label("rank")
        )
        inner = select(clean_market_data, rank).subquery()
        query = select(inner).where(inner.c.rank <= lookback).order_by(inner.c.window_start)
        self.flush()
        with self.engine.connect() as conn:
            return [window_from_row(row._mapping) for row in conn.execute(query)]

    def latest_window_end(self) -> datetime | None:
        """End of the newest stored window of any symbol, None for an empty store."""
        self.flush()
        with self.engine.connect() as conn:
            end = conn.execute(select(func.max(clean_market_data.c.window_end))).scalar_one()
        return UtcDateTime().process_result_value(end, self.engine.dialect) if end else None

    def upsert(self, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        """Upsert plain rows of any table on its primary key (alerts, market events)."""
        self._upsert(table, rows)

    def latest_window_ends(self) -> dict[str, datetime]:
        """End of the newest stored window of each symbol."""
        c = clean_market_data.c
        self.flush()
        with self.engine.connect() as conn:
            rows = conn.execute(select(c.symbol, func.max(c.window_end)).group_by(c.symbol))
            bind = UtcDateTime().process_result_value
            return {
                symbol: end
                for symbol, raw in rows
                if (end := bind(raw, self.engine.dialect)) is not None
            }

    def windows_from(self, starts: dict[str, datetime]) -> list[Window]:
        """Stored windows of each symbol in `starts` whose window starts at or after its time
        (the windows a restart may have to write to the lake again)."""
        c = clean_market_data.c
        found: list[Window] = []
        self.flush()
        with self.engine.connect() as conn:
            for symbol, start in starts.items():
                query = select(clean_market_data).where(c.symbol == symbol, c.window_start >= start)
                found += [window_from_row(row._mapping) for row in conn.execute(query)]
        return found

    def count(self, table: Table) -> int:
        self.flush()
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    def close(self) -> None:
        """Wait for submitted writes (a failure no caller has seen yet is raised after the
        rest), build the indexes a bulk load deferred, release the connections."""
        writer, self._writer = self._writer, None
        try:
            if writer is not None:
                writer.close()
        finally:
            try:
                with self.engine.begin() as conn:
                    for index in self._deferred:
                        index.create(conn, checkfirst=True)
                self._deferred = []
            except SQLAlchemyError as exc:  # the next open builds them
                log.warning("could not build the indexes of %s: %s", self.engine_url_masked, exc)
            finally:
                self.engine.dispose()


class _TimeText:
    """`UtcDateTime`'s bind value, computed once per distinct time of a batch (the windows of
    one close share their start and end)."""

    def __init__(self, dialect: Dialect) -> None:
        self._bind = UtcDateTime().process_bind_param
        self._dialect = dialect
        self._seen: dict[datetime, Any] = {}

    def __call__(self, value: datetime) -> Any:
        text = self._seen.get(value)
        if text is None:
            text = self._seen[value] = self._bind(value, self._dialect)
        return text


def _sqlite_values(table: pa.Table, names: list[str]) -> list[tuple[Any, ...]]:
    """Rows of `table` in the order `names`, bound as `UtcDateTime` binds on SQLite: times
    as ISO 8601 text with milliseconds and `+00:00` (what `isoformat(timespec=
    "milliseconds")` of a UTC datetime gives), nulls as None."""
    columns: list[list[Any]] = []
    for name in names:
        column = table[name]
        if pa.types.is_timestamp(column.type):
            assert column.null_count == 0, name
            instants = column.cast(pa.int64()).to_numpy().astype("datetime64[us]")
            text = np.char.add(np.datetime_as_string(instants, unit="ms"), "+00:00")
            columns.append(text.tolist())
        else:
            columns.append(column.to_pylist())
    return list(zip(*columns, strict=True))


def window_from_row(row: Any) -> Window:
    return Window(
        symbol=row["symbol"],
        asset_type=AssetType(row["asset_type"]),
        window_start=row["window_start"],
        window_end=row["window_end"],
        open=row["open"],
        high=row["high"],
        low=row["low"],
        close=row["close"],
        volume=row["volume"],
        tick_count=row["tick_count"],
        vwap=row["vwap"],
        price_return_pct=row["price_return_pct"],
        volatility=row["volatility"],
        scores={
            f: Score(row[f"{f.value}_mean"], row[f"{f.value}_std"], row[f"{f.value}_z"])
            for f in Feature
        },
    )
