"""The queue's Redis operations (src/jobs/store.py) on the run's real Redis, each test under a
queue prefix of its own: what the end-to-end drills cannot force in one exact order (a second
delivery of a settled job, a result written twice, a backoff that is or is not over, a dead
letter buried twice). Facts are read back from Redis directly."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from redis.asyncio import Redis

from src.configurations import QueueSettings
from src.jobs.store import (
    DEAD,
    RETRYING,
    SUCCEEDED,
    Entry,
    IdempotencyConflict,
    JobStore,
    NotDead,
    QueueFull,
)
from tests.chapter4_serving_patterns.asynchronous_pattern.harness import unique_prefix

T = TypeVar("T")
RESULT = {"label": "3", "prediction": [0.1, 0.9], "model": {"name": "m", "version": "v"}}


def run(redis_url: str, body: Callable[[JobStore, Redis], Awaitable[T]], **settings: Any) -> T:
    async def main() -> T:
        config = QueueSettings(redis_url=redis_url, queue_prefix=unique_prefix(), **settings)
        redis = Redis.from_url(redis_url, socket_timeout=5)
        try:
            store = JobStore(redis, config)
            await store.ensure_group()
            return await body(store, redis)
        finally:
            await redis.aclose()

    return asyncio.run(main())


async def take(store: JobStore) -> Entry:
    [entry] = await store.read("tester", 100)
    return entry


def test_a_result_written_twice_and_a_second_delivery_are_harmless(redis_url: str) -> None:
    async def body(store: JobStore, redis: Redis) -> None:
        submitted = await store.submit(b"image bytes")
        entry = await take(store)
        assert entry.job_id == submitted.job_id
        job = await store.start(entry.job_id, "tester")
        assert job is not None and job.attempts == 1
        await store.succeed(entry, RESULT)
        await store.succeed(entry, RESULT)  # e.g. a reclaimed copy finishing too
        settled = await store.job(entry.job_id)
        assert settled is not None and settled.status == SUCCEEDED and settled.result == RESULT
        assert settled.attempts == 1
        assert not await redis.exists(store.input_key(entry.job_id))
        assert await redis.xlen(store.stream) == 0
        assert await store.start(entry.job_id, "other") is None  # settled: nothing to run

    run(redis_url, body)


def test_backoff_keeps_a_job_out_of_the_stream_until_it_is_due(redis_url: str) -> None:
    async def body(store: JobStore, redis: Redis) -> None:
        later = (await store.submit(b"later")).job_id
        now = (await store.submit(b"now")).job_id
        error = {"code": "dependency_unavailable", "message": "down", "attempt": 1}
        for _ in range(2):
            entry = await take(store)
            await store.start(entry.job_id, "tester")
            await store.retry_later(entry, error, 3600 if entry.job_id == later else 0)
        assert await redis.xlen(store.stream) == 0 and await store.depth() == 2
        assert (await store.job(later)).status == RETRYING  # type: ignore[union-attr]
        assert await store.promote_due() == 1
        entry = await take(store)
        assert entry.job_id == now and await store.depth() == 2

    run(redis_url, body)


def test_a_dead_letter_is_listed_once_and_retried_only_while_dead(redis_url: str) -> None:
    async def body(store: JobStore, redis: Redis) -> None:
        job_id = (await store.submit(b"poison")).job_id
        entry = await take(store)
        await store.start(job_id, "tester")
        error = {"code": "unsupported_media_type", "message": "no", "attempt": 1}
        await store.bury(entry, error)
        await store.bury(entry, error)  # buried twice: still one dead letter in the listing
        jobs, total = await store.dead_letters(10, 0)
        assert total == 1 and [job.job_id for job in jobs] == [job_id]
        assert jobs[0].status == DEAD and jobs[0].error == error
        assert 0 < await redis.ttl(store.input_key(job_id)) <= 3600
        assert await store.retry_dead(job_id)
        retried = await store.job(job_id)
        assert retried is not None and retried.attempts == 0 and retried.error is None
        assert await redis.ttl(store.job_key(job_id)) == -1  # pending again: no expiry
        with pytest.raises(NotDead):
            await store.retry_dead(job_id)
        assert await store.dead_letters(10, 0) == ([], 0)

    run(redis_url, body)


def test_idempotency_and_backpressure(redis_url: str) -> None:
    async def body(store: JobStore, redis: Redis) -> None:
        first = await store.submit(b"one", "key")
        assert first.created
        again = await store.submit(b"one", "key")
        assert again.job_id == first.job_id and not again.created
        with pytest.raises(IdempotencyConflict):
            await store.submit(b"two", "key")
        await store.submit(b"two")
        with pytest.raises(QueueFull):
            await store.submit(b"three")
        assert await redis.xlen(store.stream) == 2

    run(redis_url, body, max_queue_length=2)
