"""Helpers of the browser tests: serve an app on loopback, read what ECharts drew.

Chromium is Debian's package (/usr/bin/chromium), driven by Playwright; the fixtures that start
it are in this folder's conftest.py. The readers below ask a chart for what it rendered (the
laid-out points of a series converted back to data values, the axis labels it drew), not for the
option the page passed in, so a test sees what a user sees.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI
from playwright.sync_api import Page

from tickwatch.web import WebServer

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """The app under real uvicorn on a free loopback port: its base URL."""
    server = WebServer(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.server.started:
        assert time.monotonic() < deadline, "web server did not start"
        time.sleep(0.05)
    try:
        yield server.url
    finally:
        server.stop()
        thread.join(10)


def open_dashboard(page: Page, url: str) -> None:
    page.goto(url)
    # a selector, not wait_for_function: the CSP forbids the eval that would need
    page.wait_for_selector("body[data-loaded]", state="attached", timeout=15_000)


def drawn_line(page: Page, chart_id: str, series: str) -> list[list[float]]:
    """[time ms, value] of each point ECharts laid out for a line series (stacking applied),
    read from the pixel layout and converted back through the chart's axes."""
    points: list[list[float]] = page.evaluate(
        """([id, name]) => {
            const chart = window.tickwatch.charts[id];
            const series = chart.getModel().getSeriesByName(name)[0];
            const pts = series.getData().getLayout("points");
            const out = [];
            for (let i = 0; i + 1 < pts.length; i += 2) {
                if (isNaN(pts[i]) || isNaN(pts[i + 1])) continue;
                out.push(chart.convertFromPixel({ seriesName: name }, [pts[i], pts[i + 1]]));
            }
            return out;
        }""",
        [chart_id, series],
    )
    return points


def axis_labels(page: Page, chart_id: str, axis: str, index: int = 0) -> list[str]:
    """The labels ECharts drew on an axis ('xAxis' or 'yAxis'), formatter applied."""
    labels: list[str] = page.evaluate(
        """([id, axis, index]) => {
            const model = window.tickwatch.charts[id].getModel().getComponent(axis, index);
            return model.axis.getViewLabels().map((l) => l.formattedLabel);
        }""",
        [chart_id, axis, index],
    )
    return labels


def option(page: Page, chart_id: str) -> Any:
    return page.evaluate(f"window.tickwatch.charts['{chart_id}'].getOption()")


def time_axis_labels(page: Page, chart_id: str) -> list[list[list[float]]]:
    """Per time x axis of a chart, the [left, right] pixel extent of each label drawn below
    its grid, left to right (labels ECharts hid for overlapping are not drawn)."""
    extents: list[list[list[float]]] = page.evaluate(
        """(id) => {
            const chart = window.tickwatch.charts[id];
            const texts = chart.getZr().storage.getDisplayList(true)
                .filter((e) => e.type === "tspan" && !e.invisible)
                .map((t) => {
                    const r = t.getBoundingRect().clone();
                    const m = t.getComputedTransform();
                    if (m) r.applyTransform(m);
                    return r;
                });
            const out = [];
            for (let i = 0; chart.getModel().getComponent("xAxis", i); i++) {
                const axis = chart.getModel().getComponent("xAxis", i).axis;
                if (axis.type !== "time") continue;
                const g = axis.grid.getRect();
                const bottom = g.y + g.height;
                const below = texts.filter((r) => r.y >= bottom && r.y <= bottom + 30
                    && r.x + r.width >= g.x - 40 && r.x <= g.x + g.width + 40);
                out.push(below.map((r) => [r.x, r.x + r.width]).sort((a, b) => a[0] - b[0]));
            }
            return out;
        }""",
        chart_id,
    )
    return extents
