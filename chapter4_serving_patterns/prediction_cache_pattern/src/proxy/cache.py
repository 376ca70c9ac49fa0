"""The prediction cache in Redis, with single-flight across every proxy worker (SPEC 3.8).

    prediction_cache:{model_name}:{model_version}:{sha256 of the image bytes}  → the /predict body

A lookup (one GET) that finds the key answers HIT. On a miss one request, across all workers
and replicas, takes the key's lock (`SET NX PX`, CACHE_LOCK_TTL_MS, so that a holder that died
frees it) and computes: MISS. The others poll for up to CACHE_WAIT_MS and answer COALESCED with
what the holder wrote; when the holder failed (its error is never cached) or died, one of them
takes the lock and computes (MISS); at the deadline they compute themselves (COALESCED). "Is
the result there, else take the lock" is one Lua script: a request whose GET missed just before
the holder wrote can never take the lock the holder has just released and compute again.
The result is written, with its TTL and the lock released in the same script, before the
response is sent. Any Redis failure (down, slow beyond REDIS_TIMEOUT_MS) answers without the
cache: BYPASS, never an error of the cache's making.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import StrEnum

from prometheus_client import Counter, Histogram
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from src.common.metrics import counter, histogram
from src.configurations import ProxySettings

KEY_PREFIX = "prediction_cache"
LOCK_PREFIX = "prediction_cache_lock"
POLL_FIRST_S = 0.002  # the first look at the result key; doubled up to POLL_MAX_S
POLL_MAX_S = 0.02
LOOKUP_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)
# After a lookup missed: the result if it arrived meanwhile, else the lock if it is free. One
# atomic step, so that a request that missed just before the holder wrote can never take the
# lock the holder has just released and compute the same key a second time.
RESULT_OR_LOCK = """
local value = redis.call('GET', KEYS[1])
if value then return {'result', value} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {'locked'} end
return {'busy'}
"""
# The result and the release of the lock in one atomic step; the lock is deleted only while it
# is still this holder's (after its PX expired another request may hold it).
STORE_AND_RELEASE = """
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return 1
"""
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
logger = logging.getLogger("proxy.cache")


class CacheResult(StrEnum):
    HIT = "HIT"
    MISS = "MISS"
    COALESCED = "COALESCED"
    BYPASS = "BYPASS"


@dataclass(frozen=True)
class Computed:
    """A fresh prediction: the /predict body and the model version that answered."""

    body: str
    model_version: str


@dataclass(frozen=True)
class Cached:
    body: str
    model_version: str
    result: CacheResult


Compute = Callable[[], Awaitable[Computed]]


def cache_key(model_name: str, model_version: str, digest: str) -> str:
    return f"{KEY_PREFIX}:{model_name}:{model_version}:{digest}"


@asynccontextmanager
async def open_redis(settings: ProxySettings) -> AsyncIterator[Redis]:
    """The worker's Redis client: every call bounded by REDIS_TIMEOUT_MS and never retried
    (a retry would multiply the time a request spends on a Redis that is gone)."""
    client = Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        yield client
    finally:
        await client.aclose()


@dataclass(frozen=True)
class Flight:
    """One image under one model: its key, the lock of that key and this request's token."""

    model_name: str
    model_version: str
    digest: str
    token: str = field(default_factory=lambda: secrets.token_hex(16))

    @property
    def key(self) -> str:
        return cache_key(self.model_name, self.model_version, self.digest)

    @property
    def lock(self) -> str:
        return f"{LOCK_PREFIX}:{self.model_name}:{self.model_version}:{self.digest}"

    def key_of(self, computed: Computed) -> str:
        """The answer of another version goes under that version's key (SPEC 3.8 b. 1)."""
        return cache_key(self.model_name, computed.model_version, self.digest)


class PredictionCache:
    def __init__(self, redis: Redis, settings: ProxySettings) -> None:
        self.redis = redis
        self.ttl_s = settings.cache_ttl_s
        self.wait_s = settings.cache_wait_ms / 1000
        self.lock_ttl_ms = settings.cache_lock_ttl_ms
        self._store_and_release: AsyncScript = redis.register_script(STORE_AND_RELEASE)
        self._release: AsyncScript = redis.register_script(RELEASE)
        self._result_or_lock: AsyncScript = redis.register_script(RESULT_OR_LOCK)

    async def answer(
        self, model_name: str, model_version: str, digest: str, compute: Compute
    ) -> Cached:
        """The prediction for this image under this model, from the cache or computed once."""
        flight = Flight(model_name, model_version, digest)
        try:
            body = await self._lookup(flight.key)
            if body is not None:
                return _counted(Cached(body, model_version, CacheResult.HIT))
            return await self._single_flight(flight, compute)
        except RedisError as error:
            logger.warning("redis unavailable, answering without the cache: %s", error)
            computed = await compute()
            return _counted(Cached(computed.body, computed.model_version, CacheResult.BYPASS))

    async def status(self) -> str:
        """What /ready reports: "ok" when Redis answers a PING within REDIS_TIMEOUT_MS, else
        "degraded" (the proxy still answers, without the cache)."""
        try:
            await self.redis.ping()
        except RedisError:
            return "degraded"
        return "ok"

    async def _lookup(self, key: str) -> str | None:
        started = time.perf_counter()
        outcome = "error"
        try:
            value = _text(await self.redis.get(key))
            outcome = "miss" if value is None else "hit"
            return value
        finally:
            lookup_seconds().labels(outcome).observe(time.perf_counter() - started)

    async def _result_or_lock_of(self, flight: Flight) -> str | bool:
        """The cached body if there is one now, else True when this request took the lock,
        False when another holds it."""
        reply = await self._result_or_lock(
            keys=[flight.key, flight.lock], args=[flight.token, self.lock_ttl_ms]
        )
        state = _text(reply[0])
        if state == "result":
            return _text(reply[1]) or ""
        return state == "locked"

    async def _single_flight(self, flight: Flight, compute: Compute) -> Cached:
        """After a miss: compute as the lock's holder (MISS), or wait for the holder; take over
        the lock if the holder let it go without a result (it failed, or it died and its lock
        expired); at CACHE_WAIT_MS compute without the lock (COALESCED)."""
        deadline = time.monotonic() + self.wait_s
        delay = POLL_FIRST_S
        while True:
            state = await self._result_or_lock_of(flight)
            if isinstance(state, str):  # written by another request since the lookup
                return _counted(Cached(state, flight.model_version, CacheResult.COALESCED))
            if state:
                return await self._compute_as_holder(flight, compute)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return await self._compute_unlocked(flight, compute)
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, POLL_MAX_S)

    async def _compute_as_holder(self, flight: Flight, compute: Compute) -> Cached:
        try:
            computed = await compute()
        except BaseException:
            # Errors are never cached; free the key at once for the next request.
            with contextlib.suppress(RedisError):  # else the lock expires by itself
                await self._release(keys=[flight.lock], args=[flight.token])
            raise
        result = CacheResult.MISS
        try:
            await self._store_and_release(
                keys=[flight.key_of(computed), flight.lock],
                args=[computed.body, self.ttl_s, flight.token],
            )
        except RedisError as error:
            logger.warning("redis unavailable, the prediction is not cached: %s", error)
            result = CacheResult.BYPASS
        return _counted(Cached(computed.body, computed.model_version, result))

    async def _compute_unlocked(self, flight: Flight, compute: Compute) -> Cached:
        computed = await compute()
        result = CacheResult.COALESCED
        try:
            await self.redis.set(flight.key_of(computed), computed.body, ex=self.ttl_s)
        except RedisError as error:
            logger.warning("redis unavailable, the prediction is not cached: %s", error)
            result = CacheResult.BYPASS
        return _counted(Cached(computed.body, computed.model_version, result))


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _counted(cached: Cached) -> Cached:
    cache_requests().labels(cached.result.value).inc()
    return cached


def cache_requests() -> Counter:
    return counter("cache_requests_total", "Predictions answered, by cache result", ("result",))


def lookup_seconds() -> Histogram:
    return histogram(
        "cache_lookup_seconds",
        "Time of the cache lookup (one Redis GET), by outcome",
        ("outcome",),
        buckets=LOOKUP_BUCKETS,
    )
