"""The tensor cache in Redis: optional by design (SPEC 3.9 behaviour 4).

Redis only ever speeds the proxy up: every call is bounded by REDIS_TIMEOUT_MS (connect, each
command, and the whole call), no call is retried inside a request, and any failure — refused
connection, time-out, an error reply, a Redis that was never there — turns into "no cache" for
that request (X-Data-Cache: BYPASS), never into an error for the client. After a failure the
proxy leaves Redis alone for REDIS_RETRY_MS, so that a dead or hung Redis costs one time-out
per interval rather than one per request; the first call after the interval tries again, so the
cache comes back by itself when Redis does.

Metrics: `data_cache_requests_total{result}` (hit / miss / bypass, counted by the routes) and
`data_cache_lookup_seconds{outcome}` (the GET of a lookup: hit, miss or error).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from prometheus_client import Counter, Histogram
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from src.common.metrics import counter, histogram
from src.configurations import ProxySettings

logger = logging.getLogger("proxy.cache")
HIT, MISS, BYPASS = "HIT", "MISS", "BYPASS"
LOOKUP_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)
# What a Redis call can end with besides an answer; all of them mean "no cache this time".
FAILURES = (RedisError, OSError, TimeoutError)


class TensorCache:
    def __init__(self, client: Redis, settings: ProxySettings) -> None:
        self.client = client
        self.ttl_s = settings.cache_ttl_s
        self.timeout_s = settings.redis_timeout_s
        self.retry_s = settings.redis_retry_ms / 1000
        self._resting_until = 0.0  # monotonic time before which Redis is not called

    async def get(self, key: str) -> tuple[bytes | None, bool]:
        """(value or None, whether Redis answered). Never raises for a Redis failure."""
        if self._resting():
            return None, False
        started = time.perf_counter()
        try:
            value = await self._call(self.client.get(key))
        except FAILURES as error:
            lookup_seconds().labels("error").observe(time.perf_counter() - started)
            self._failed("GET", error)
            return None, False
        lookup_seconds().labels("hit" if value is not None else "miss").observe(
            time.perf_counter() - started
        )
        return (bytes(value) if value is not None else None), True

    async def set(self, key: str, value: bytes) -> bool:
        """Store with the TTL; False (logged, never raised) when Redis did not take it."""
        if self._resting():
            return False
        try:
            await self._call(self.client.set(key, value, ex=self.ttl_s))
        except FAILURES as error:
            self._failed("SET", error)
            return False
        return True

    async def status(self) -> dict[str, Any]:
        """What /ready reports: `ok`, or `degraded` with the reason (never raises)."""
        try:
            await self._call(self.client.ping())
        except FAILURES as error:
            return {"status": "degraded", "error": _describe(error)}
        self._resting_until = 0.0  # Redis answers: the next request may use it at once
        return {"status": "ok"}

    async def _call(self, awaitable: Any) -> Any:
        # redis-py bounds connect and each socket read; this bounds the whole call as well.
        async with asyncio.timeout(self.timeout_s * 2):
            return await awaitable

    def _resting(self) -> bool:
        return time.monotonic() < self._resting_until

    def _failed(self, command: str, error: BaseException) -> None:
        if not self._resting():
            logger.warning(
                "redis unavailable, answering without the cache",
                extra={
                    "command": command,
                    "error": _describe(error),
                    "retry_ms": round(self.retry_s * 1000),
                },
            )
        self._resting_until = time.monotonic() + self.retry_s


@asynccontextmanager
async def open_cache(settings: ProxySettings) -> AsyncIterator[TensorCache]:
    """The process's Redis client (a pool, connected lazily: Redis may be down at start)."""
    client = Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        retry=Retry(NoBackoff(), 0),  # no retry within a request: BYPASS instead
    )
    try:
        yield TensorCache(client, settings)
    finally:
        await client.aclose()


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def cache_requests() -> Counter:
    return counter(
        "data_cache_requests_total",
        "Item tensor lookups by result (hit, miss, bypass)",
        ("result",),
    )


def lookup_seconds() -> Histogram:
    return histogram(
        "data_cache_lookup_seconds",
        "Latency of the Redis GET of a tensor lookup by outcome",
        ("outcome",),
        buckets=LOOKUP_BUCKETS,
    )
