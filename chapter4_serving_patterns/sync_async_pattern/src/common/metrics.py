"""Prometheus metrics, correct under several gunicorn workers (CONVENTIONS 4).

`install_metrics(app)` counts every HTTP request and times it, labelled by method, route
template (`/items/{item_id}`, never the raw path: bounded cardinality) and status, and serves
`GET /metrics`. When PROMETHEUS_MULTIPROC_DIR is set (gunicorn.conf.py sets it in the master
before the workers start) every worker writes its values there and a scrape of any worker
aggregates them all; otherwise the process's default registry is served.

`counter()`, `histogram()` and `gauge()` add the pattern's own metrics; calling them again
with the same name returns the same metric, so an app factory may run more than once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any, TypeVar

from fastapi import FastAPI
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

METRICS_PATH = "/metrics"
UNMATCHED_ROUTE = "<unmatched>"  # one label for every path no route knows (404s)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

MetricT = TypeVar("MetricT", bound=MetricWrapperBase)
_created: dict[str, MetricWrapperBase] = {}


def _get_or_create(kind: type[MetricT], name: str, **kwargs: Any) -> MetricT:
    existing = _created.get(name)
    if existing is None:
        existing = kind(name, **kwargs)
        _created[name] = existing
    if not isinstance(existing, kind):
        raise TypeError(f"metric {name} already exists as {type(existing).__name__}")
    return existing


def counter(name: str, documentation: str, labelnames: Sequence[str] = ()) -> Counter:
    return _get_or_create(Counter, name, documentation=documentation, labelnames=labelnames)


def histogram(
    name: str,
    documentation: str,
    labelnames: Sequence[str] = (),
    buckets: Sequence[float] = Histogram.DEFAULT_BUCKETS,
) -> Histogram:
    return _get_or_create(
        Histogram, name, documentation=documentation, labelnames=labelnames, buckets=buckets
    )


def gauge(
    name: str,
    documentation: str,
    labelnames: Sequence[str] = (),
    multiprocess_mode: str = "livesum",
) -> Gauge:
    """`multiprocess_mode` says how workers' values combine (livesum, max, mostrecent, ...)."""
    return _get_or_create(
        Gauge,
        name,
        documentation=documentation,
        labelnames=labelnames,
        multiprocess_mode=multiprocess_mode,
    )


def request_metrics() -> tuple[Counter, Histogram]:
    labels = ("method", "route", "status")
    return (
        counter("http_requests_total", "HTTP requests handled", labels),
        histogram("http_request_duration_seconds", "HTTP request latency", labels),
    )


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class MetricsMiddleware:
    """Counts and times each HTTP request once the route is known (after the call)."""

    def __init__(self, app: ASGIApp, exclude_paths: Sequence[str] = (METRICS_PATH,)) -> None:
        self.app = app
        self.exclude_paths = frozenset(exclude_paths)
        self.requests, self.latency = request_metrics()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exclude_paths:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception that escapes becomes a 500 further out

        async def send_recording_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_recording_status)
        finally:
            labels = (scope["method"], route_template(scope), str(status))
            self.requests.labels(*labels).inc()
            self.latency.labels(*labels).observe(time.perf_counter() - started)


def metrics_exposition() -> bytes:
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def metrics_endpoint() -> Response:
    # Synchronous: FastAPI runs it in a thread, since the multiprocess scrape reads files.
    return Response(metrics_exposition(), media_type=CONTENT_TYPE_LATEST)


def install_metrics(app: FastAPI, path: str = METRICS_PATH) -> None:
    app.add_middleware(MetricsMiddleware, exclude_paths=(path,))
    app.add_api_route(path, metrics_endpoint, methods=["GET"], include_in_schema=False)
