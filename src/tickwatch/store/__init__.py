"""Sinks: the SQL store (SQLite or PostgreSQL) and the Parquet lake."""

from tickwatch.store.parquet import ParquetLake
from tickwatch.store.sql import SqlStore

__all__ = ["ParquetLake", "SqlStore"]
