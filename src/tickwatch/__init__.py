"""tickwatch: real-time anomaly detection for financial markets."""

__version__ = "0.1.0"
