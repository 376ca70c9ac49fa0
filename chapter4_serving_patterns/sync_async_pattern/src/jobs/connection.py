"""The Redis client of a process: every command bounded by REDIS_TIMEOUT_MS (SPEC 0.7 rule 3).

No retry inside the client: the proxy answers 503 with Retry-After at once while Redis is
away, and the worker's loop retries with its own backoff (src/worker/consumer.py).
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from src.configurations import QueueSettings


def redis_client(settings: QueueSettings) -> Redis:
    return Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        retry=Retry(NoBackoff(), 0),
        decode_responses=False,  # input bytes are images
    )
