"""The queue consumers of one worker process (SPEC 0.9 rules 4, 5 and 9).

Each of WORKER_CONCURRENCY consumers loops:

    move jobs whose backoff is over back into the stream
    take one entry: reclaimed from a consumer gone silent (XAUTOCLAIM), else a new one
    run it: count the attempt → stored bytes → preprocessing (metadata.json) → pred's V2 infer
            → label (label.json) → result written and entry acknowledged in one transaction

While a job runs, its entry's idle time is reset every third of VISIBILITY_TIMEOUT_S, so that
only a consumer that stopped (crashed, killed, hung process) loses its jobs to another one.
Failures: undecodable input is permanent (dead at once); pred unreachable, slow or 5xx is
transient (retried with exponential backoff until MAX_ATTEMPTS, then dead). An exception in
one job never ends the loop; Redis errors make the consumer wait (backoff up to
RECONNECT_MAX_S) and try again. A stop request (SIGTERM) is honoured between jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from redis.exceptions import RedisError, ResponseError

from src.common.metrics import counter, gauge, histogram
from src.configurations import WorkerSettings
from src.jobs.store import Entry, Job, JobStore
from src.ml import pipeline
from src.ml.image_input import ImageInputError
from src.ml.pipeline import ImageClassifier
from src.pred_client import PredClient, PredRefused, PredUnavailable

logger = logging.getLogger("worker")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
FIRST_RECONNECT_S = 0.1


class Metrics:
    """The worker's Prometheus metrics, served on WORKER_PORT."""

    def __init__(self) -> None:
        self.jobs: Counter = counter("worker_jobs_total", "Jobs settled by outcome", ["outcome"])
        self.attempts: Counter = counter("worker_attempts_total", "Attempts started")
        self.latency: Histogram = histogram(
            "worker_job_seconds",
            "From submission to the job's final state",
            ["outcome"],
            buckets=LATENCY_BUCKETS,
        )
        self.queue_wait: Histogram = histogram(
            "worker_queue_wait_seconds", "From submission to first start", buckets=LATENCY_BUCKETS
        )
        self.depth: Gauge = gauge(
            "queue_depth", "Jobs waiting, running or backing off", multiprocess_mode="mostrecent"
        )
        self.dead: Gauge = gauge(
            "dead_letters", "Entries of the dead-letter stream", multiprocess_mode="mostrecent"
        )
        self.redis_errors: Counter = counter("worker_redis_errors_total", "Failed Redis calls")


@dataclass(frozen=True)
class Failure:
    code: str
    message: str
    permanent: bool

    def to_json(self, attempt: int) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "attempt": attempt}


class Worker:
    def __init__(
        self,
        store: JobStore,
        pred: PredClient,
        classifier: ImageClassifier,
        settings: WorkerSettings,
    ) -> None:
        self.store = store
        self.pred = pred
        self.classifier = classifier
        self.settings = settings
        self.name = f"{socket.gethostname()}-{os.getpid()}"
        self.stopping = asyncio.Event()
        self.metrics = Metrics()

    def stop(self) -> None:
        self.stopping.set()

    async def run(self) -> None:
        """The consumers and the heartbeat, until stop(); the jobs in hand finish first."""
        consumers = [
            asyncio.create_task(self.consume(f"{self.name}-{index}"), name=f"consumer-{index}")
            for index in range(self.settings.worker_concurrency)
        ]
        beat = asyncio.create_task(self.heartbeat(), name="heartbeat")
        await asyncio.gather(*consumers)
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
        with contextlib.suppress(RedisError):
            await self.store.leave(self.name)

    async def consume(self, consumer: str) -> None:
        failures = 0
        while not self.stopping.is_set():
            try:
                entries = await self.take(consumer)
                failures = 0
            except RedisError as error:
                failures += 1
                await self.redis_trouble(error, failures)
                continue
            for entry in entries:
                await self.run_job(consumer, entry)

    async def take(self, consumer: str) -> list[Entry]:
        try:
            await self.store.promote_due()
            return await self.store.reclaim(consumer) or await self.store.read(
                consumer, self.settings.queue_block_ms
            )
        except ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            await self.store.ensure_group()  # a Redis that came back without its data
            return []

    async def redis_trouble(self, error: RedisError, failures: int) -> None:
        self.metrics.redis_errors.inc()
        delay = min(self.settings.reconnect_max_s, FIRST_RECONNECT_S * 2 ** (failures - 1))
        logger.warning(
            "redis unavailable, retrying in %.1f s: %r", delay, error, extra={"failures": failures}
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), delay)

    async def heartbeat(self) -> None:
        """Tells /health/all this worker is there; refreshes the queue gauges."""
        while True:
            try:
                await self.store.heartbeat(self.name)
                self.metrics.depth.set(await self.store.depth())
                self.metrics.dead.set(await self.store.dead_count())
            except RedisError as error:
                logger.debug("heartbeat failed: %r", error)
            await asyncio.sleep(self.settings.heartbeat_interval_s)

    async def run_job(self, consumer: str, entry: Entry) -> None:
        """Never raises: a Redis error leaves the entry pending (reclaimed later), anything
        else is logged and counted as a transient failure of this attempt."""
        extender = asyncio.create_task(self.extend(consumer, entry))
        try:
            await self.process(consumer, entry)
        except RedisError as error:
            self.metrics.redis_errors.inc()
            logger.warning("job %s left pending: redis: %r", entry.job_id, error)
        except Exception:
            logger.exception("job %s failed unexpectedly", entry.job_id)
            with contextlib.suppress(Exception):
                job = await self.store.job(entry.job_id)
                failure = Failure("internal_error", "the worker failed unexpectedly", False)
                await self.fail(entry, job, failure)
        finally:
            extender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await extender

    async def extend(self, consumer: str, entry: Entry) -> None:
        interval = self.settings.visibility_timeout_s / 3
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(RedisError):
                await self.store.extend(consumer, entry.entry_id)

    async def process(self, consumer: str, entry: Entry) -> None:
        job = await self.store.start(entry.job_id, consumer)
        if job is None:  # expired, or settled by an earlier delivery: nothing left to do
            await self.store.discard(entry)
            return
        self.metrics.attempts.inc()
        if job.attempts == 1 and job.started_at is not None:
            self.metrics.queue_wait.observe(max(0.0, job.started_at - job.created_at))
        if job.attempts > self.settings.max_attempts:
            message = (
                f"held by consumers that stopped {job.attempts - 1} times (visibility timeout)"
            )
            await self.fail(entry, job, Failure("max_attempts", message, True))
            return
        outcome = await self.predict(job)
        if isinstance(outcome, Failure):
            await self.fail(entry, job, outcome)
            return
        await self.store.succeed(entry, outcome)
        self.settled(job, "succeeded")

    async def predict(self, job: Job) -> dict[str, Any] | Failure:
        data = await self.store.input(job.job_id)
        if data is None:
            return Failure("input_missing", "the stored input is gone (expired)", True)
        try:
            batch = await asyncio.to_thread(
                pipeline.preprocess_file, data, self.classifier, self.settings.max_image_bytes
            )
        except ImageInputError as error:  # what no retry can fix
            return Failure(error.code, str(error), True)
        try:
            probabilities = await self.pred.infer(batch, job.job_id)
        except PredUnavailable as error:
            return Failure("dependency_unavailable", str(error), False)
        except PredRefused as error:
            return Failure("bad_gateway", str(error), True)
        [(row, label)] = pipeline.postprocess(probabilities, self.classifier)
        card = self.classifier.card
        return {
            "label": label,
            "prediction": [float(value) for value in row],
            "model": {"name": card.name, "version": card.version},
        }

    async def fail(self, entry: Entry, job: Job | None, failure: Failure) -> None:
        attempt = job.attempts if job is not None else 0
        error = failure.to_json(attempt)
        fields = {"job_id": entry.job_id, "error_code": failure.code, "attempt": attempt}
        if failure.permanent or attempt >= self.settings.max_attempts:
            await self.store.bury(entry, error)
            self.settled(job, "dead")
            logger.warning("job %s dead: %s", entry.job_id, failure.message, extra=fields)
            return
        delay = min(
            self.settings.retry_backoff_max_s, self.settings.retry_backoff_s * 2 ** (attempt - 1)
        )
        await self.store.retry_later(entry, error, delay)
        self.metrics.jobs.labels("retried").inc()
        logger.info("job %s retried in %.2f s: %s", entry.job_id, delay, failure.message,
                    extra=fields)  # fmt: skip

    def settled(self, job: Job | None, outcome: str) -> None:
        self.metrics.jobs.labels(outcome).inc()
        if job is not None:
            self.metrics.latency.labels(outcome).observe(max(0.0, time.time() - job.created_at))
