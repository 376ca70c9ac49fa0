"""The reliable job queue of SPEC 0.9 in Redis: what proxy and worker both use.

Keys (P = QUEUE_PREFIX):

    P:job:<id>        hash    status, attempts, timestamps, input_sha256, result, error
    P:input:<id>      string  the image file exactly as the client sent it
    P:jobs            stream  one entry per job to run; consumer group `workers`
    P:delayed         zset    jobs waiting out their retry backoff (score: when they are due)
    P:dead            stream  dead letters: job id and error, trimmed to RESULT_TTL_S
    P:idem:<key>      string  "<job id> <input sha256>" of an Idempotency-Key
    P:heartbeats      zset    worker process → time of its last heartbeat

A job is in the stream from submission until it is settled: XLEN of the stream plus the size of
the delayed set is the queue depth (waiting, running or backing off). Delivery is at least
once: an entry stays in the group's pending list until the consumer that runs it acknowledges
and deletes it, in the same transaction that writes the job's final state; a consumer that
stops extending an entry (crashed, killed) loses it to XAUTOCLAIM after VISIBILITY_TIMEOUT_S.
Writing a final state twice is harmless: the same fields get the same values.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError, WatchError

from src.configurations import QueueSettings

GROUP = "workers"
QUEUED, RUNNING, SUCCEEDED, RETRYING, DEAD = "queued", "running", "succeeded", "retrying", "dead"
STATUSES = (QUEUED, RUNNING, SUCCEEDED, RETRYING, DEAD)
SETTLED = frozenset({SUCCEEDED, DEAD})
# Moves the jobs whose backoff is over back into the stream, atomically (no job is lost or
# queued twice between the ZREM and the XADD). KEYS: delayed, stream; ARGV: now, at most.
PROMOTE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, job_id in ipairs(due) do
  redis.call('ZREM', KEYS[1], job_id)
  redis.call('XADD', KEYS[2], '*', 'job_id', job_id)
end
return #due
"""
PROMOTE_BATCH = 100


class QueueFull(Exception):
    def __init__(self, depth: int, limit: int) -> None:
        super().__init__(f"{depth} jobs wait or run; MAX_QUEUE_LENGTH is {limit}")


class IdempotencyConflict(Exception):
    def __init__(self, key: str, job_id: str) -> None:
        super().__init__(f"Idempotency-Key {key!r} was used for job {job_id} with another image")
        self.job_id = job_id


class NotDead(Exception):
    """A retry of a dead letter whose job is not dead (anymore) or lost its input."""


@dataclass(frozen=True)
class Entry:
    """One stream entry a consumer holds: which job it stands for."""

    entry_id: str
    job_id: str


@dataclass(frozen=True)
class Job:
    job_id: str
    status: str
    attempts: int
    created_at: float
    updated_at: float
    started_at: float | None
    input_sha256: str
    result: dict[str, Any] | None
    error: dict[str, Any] | None

    @classmethod
    def from_hash(cls, job_id: str, fields: Mapping[Any, Any]) -> Job:
        text = {_text(key): _text(value) for key, value in fields.items()}
        started = text.get("started_at")
        return cls(
            job_id=job_id,
            status=text.get("status", QUEUED),
            attempts=int(text.get("attempts", "0")),
            created_at=float(text.get("created_at", "0")),
            updated_at=float(text.get("updated_at", "0")),
            started_at=float(started) if started else None,
            input_sha256=text.get("input_sha256", ""),
            result=json.loads(text["result"]) if text.get("result") else None,
            error=json.loads(text["error"]) if text.get("error") else None,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "status": self.status,
            "attempts": self.attempts,
            "result": self.result,
            "error": self.error,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


@dataclass(frozen=True)
class Submission:
    job_id: str
    created: bool  # False: an earlier submission with the same Idempotency-Key


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class JobStore:
    """Every Redis command of the queue; the client's socket time-outs bound each one."""

    def __init__(self, redis: Redis, settings: QueueSettings) -> None:
        self.redis = redis
        self.settings = settings
        prefix = settings.queue_prefix
        self.prefix = prefix
        self.stream = f"{prefix}:jobs"
        self.delayed = f"{prefix}:delayed"
        self.dead = f"{prefix}:dead"
        self.heartbeats = f"{prefix}:heartbeats"
        self._promote = redis.register_script(PROMOTE_DUE)

    def job_key(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    def input_key(self, job_id: str) -> str:
        return f"{self.prefix}:input:{job_id}"

    def idempotency_key(self, key: str) -> str:
        return f"{self.prefix}:idem:{sha256_hex(key.encode())}"

    # --- both sides ---------------------------------------------------------------------------

    async def ping(self) -> None:
        await self.redis.ping()

    async def ensure_group(self) -> None:
        """The stream and its consumer group (again after a Redis that lost its data)."""
        try:
            await self.redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    async def depth(self) -> int:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xlen(self.stream)
            pipe.zcard(self.delayed)
            waiting, delayed = await pipe.execute()
        return int(waiting) + int(delayed)

    async def dead_count(self) -> int:
        return int(await self.redis.xlen(self.dead))

    async def job(self, job_id: str) -> Job | None:
        fields = await self.redis.hgetall(self.job_key(job_id))
        return Job.from_hash(job_id, fields) if fields else None

    # --- proxy ----------------------------------------------------------------------------------

    async def submit(self, data: bytes, idempotency_key: str | None = None) -> Submission:
        """Input bytes, job record and stream entry in one MULTI/EXEC (SPEC 0.9 rule 2). With an
        Idempotency-Key, the key is WATCHed: two racing submissions cannot both create a job."""
        depth = await self.depth()
        if depth >= self.settings.max_queue_length:
            raise QueueFull(depth, self.settings.max_queue_length)
        digest = sha256_hex(data)
        job_id = str(uuid.uuid4())
        now = time.time()
        idem = self.idempotency_key(idempotency_key) if idempotency_key is not None else None
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    if idem is not None:
                        await pipe.watch(idem)
                        earlier = await pipe.get(idem)
                        if earlier is not None:
                            return _earlier(earlier, digest, idempotency_key or "")
                    pipe.multi()  # type: ignore[no-untyped-call]
                    if idem is not None:
                        pipe.set(idem, f"{job_id} {digest}", ex=self.settings.result_ttl_s)
                    pipe.set(self.input_key(job_id), data)
                    pipe.hset(self.job_key(job_id), mapping=_new_job(digest, now))
                    pipe.xadd(self.stream, {"job_id": job_id})
                    await pipe.execute()
                    return Submission(job_id, created=True)
                except WatchError:
                    continue  # another submission with this key got in first: read its job

    async def dead_letters(self, limit: int, offset: int) -> tuple[list[Job], int]:
        """Dead jobs, newest first: the dead-letter stream, less the jobs retried since."""
        entries = await self.redis.xrevrange(self.dead)
        seen: list[str] = []
        for _, fields in entries or []:
            job_id = _text((fields or {}).get(b"job_id", b""))
            if job_id and job_id not in seen:
                seen.append(job_id)
        jobs = [job for job_id in seen if (job := await self.job(job_id)) is not None]
        dead = [job for job in jobs if job.status == DEAD]
        return dead[offset : offset + limit], len(dead)

    async def retry_dead(self, job_id: str) -> bool:
        """Re-queue a dead job with attempts reset; False when there is no such job."""
        key, input_key = self.job_key(job_id), self.input_key(job_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key, input_key)
                    fields = await pipe.hgetall(key)
                    if not fields:
                        return False
                    job = Job.from_hash(job_id, fields)
                    if job.status != DEAD:
                        raise NotDead(f"job {job_id} is {job.status}, not dead")
                    if not await pipe.exists(input_key):
                        raise NotDead(f"job {job_id}'s input has expired")
                    dead_entry = fields.get(b"dead_entry")
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.hset(key, mapping={"status": QUEUED, "attempts": 0, "error": "",
                                            "updated_at": repr(time.time())})  # fmt: skip
                    pipe.hdel(key, "dead_entry")
                    pipe.persist(key)
                    pipe.persist(input_key)
                    pipe.xadd(self.stream, {"job_id": job_id})
                    if dead_entry:
                        pipe.xdel(self.dead, dead_entry)
                    await pipe.execute()
                    return True
                except WatchError:
                    continue

    async def workers_alive(self) -> int:
        since = time.time() - self.settings.heartbeat_ttl_s
        return int(await self.redis.zcount(self.heartbeats, since, "+inf"))

    # --- worker ---------------------------------------------------------------------------------

    async def heartbeat(self, worker: str) -> None:
        now = time.time()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(self.heartbeats, {worker: now})
            pipe.zremrangebyscore(self.heartbeats, "-inf", now - self.settings.heartbeat_ttl_s)
            await pipe.execute()

    async def leave(self, worker: str) -> None:
        await self.redis.zrem(self.heartbeats, worker)

    async def promote_due(self) -> int:
        moved = await self._promote(
            keys=[self.delayed, self.stream], args=[repr(time.time()), PROMOTE_BATCH]
        )
        return int(moved)

    async def reclaim(self, consumer: str) -> list[Entry]:
        """One entry another consumer held longer than VISIBILITY_TIMEOUT_S without extending
        it; XAUTOCLAIM also drops entries whose stream entry was deleted meanwhile."""
        idle_ms = int(self.settings.visibility_timeout_s * 1000)
        reply = await self.redis.xautoclaim(
            self.stream, GROUP, consumer, min_idle_time=idle_ms, start_id="0-0", count=1
        )
        return _entries(reply[1])

    async def read(self, consumer: str, block_ms: int) -> list[Entry]:
        reply: Any = await self.redis.xreadgroup(
            GROUP, consumer, {self.stream: ">"}, count=1, block=block_ms
        )
        return [entry for _, messages in reply or [] for entry in _entries(messages)]

    async def extend(self, consumer: str, entry_id: str) -> None:
        """Reset the entry's idle time: the job is still in hand (no delivery is counted)."""
        await self.redis.xclaim(self.stream, GROUP, consumer, 0, [entry_id], justid=True)

    async def start(self, job_id: str, consumer: str) -> Job | None:
        """Count the attempt and mark the job running; None when it is gone or settled."""
        key = self.job_key(job_id)
        fields = await self.redis.hgetall(key)
        if not fields or Job.from_hash(job_id, fields).status in SETTLED:
            return None
        now = repr(time.time())
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, "attempts", 1)
            pipe.hset(key, mapping={"status": RUNNING, "updated_at": now, "consumer": consumer})
            pipe.hsetnx(key, "started_at", now)
            pipe.hgetall(key)
            replies = await pipe.execute()
        current: Mapping[Any, Any] = replies[-1]
        return Job.from_hash(job_id, current)

    async def input(self, job_id: str) -> bytes | None:
        data = await self.redis.get(self.input_key(job_id))
        return data.encode() if isinstance(data, str) else data

    async def discard(self, entry: Entry) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, GROUP, entry.entry_id)
            pipe.xdel(self.stream, entry.entry_id)
            await pipe.execute()

    async def succeed(self, entry: Entry, result: dict[str, Any]) -> None:
        """Result first, then the acknowledgement, in one transaction; input bytes deleted."""
        key = self.job_key(entry.job_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"status": SUCCEEDED, "result": json.dumps(result),
                                    "error": "", "updated_at": repr(time.time())})  # fmt: skip
            pipe.expire(key, self.settings.result_ttl_s)
            pipe.delete(self.input_key(entry.job_id))
            pipe.xack(self.stream, GROUP, entry.entry_id)
            pipe.xdel(self.stream, entry.entry_id)
            await pipe.execute()

    async def retry_later(self, entry: Entry, error: dict[str, Any], delay_s: float) -> None:
        now = time.time()
        async with self.redis.pipeline(transaction=True) as pipe:
            fields: dict[Any, Any] = {"status": RETRYING, "error": json.dumps(error)}
            fields["updated_at"] = repr(now)
            pipe.hset(self.job_key(entry.job_id), mapping=fields)
            pipe.zadd(self.delayed, {entry.job_id: now + delay_s})
            pipe.xack(self.stream, GROUP, entry.entry_id)
            pipe.xdel(self.stream, entry.entry_id)
            await pipe.execute()

    async def bury(self, entry: Entry, error: dict[str, Any]) -> None:
        """Dead: the error kept, a dead letter appended, record and input left to expire."""
        key, ttl, now = self.job_key(entry.job_id), self.settings.result_ttl_s, time.time()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"status": DEAD, "error": json.dumps(error),
                                    "updated_at": repr(now)})  # fmt: skip
            pipe.expire(key, ttl)
            pipe.expire(self.input_key(entry.job_id), ttl)
            # Dead letters older than the records they name are trimmed as new ones arrive.
            oldest = f"{int((now - ttl) * 1000)}-0"
            pipe.xadd(self.dead, {"job_id": entry.job_id, "error": json.dumps(error)},
                      minid=oldest, approximate=True)  # fmt: skip
            pipe.xack(self.stream, GROUP, entry.entry_id)
            pipe.xdel(self.stream, entry.entry_id)
            replies = await pipe.execute()
        await self.redis.hset(key, "dead_entry", replies[3])


def _new_job(digest: str, now: float) -> dict[Any, Any]:
    return {
        "status": QUEUED,
        "attempts": 0,
        "created_at": repr(now),
        "updated_at": repr(now),
        "input_sha256": digest,
    }


def _earlier(value: bytes | str, digest: str, key: str) -> Submission:
    job_id, _, earlier_digest = _text(value).partition(" ")
    if earlier_digest != digest:
        raise IdempotencyConflict(key, job_id)
    return Submission(job_id, created=False)


def _entries(messages: Any) -> list[Entry]:
    return [
        Entry(_text(entry_id), _text(fields[b"job_id"]))
        for entry_id, fields in messages or []
        if fields and b"job_id" in fields
    ]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
