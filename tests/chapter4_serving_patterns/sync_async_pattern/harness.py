"""What the sync_async_pattern tests share: where the pattern, its two models and its data are,
the answer and job-polling helpers, and a direct look into the queue's Redis keys.

Oracles come from tests/support/image_checks.py: onnxruntime in the test process on each
model.onnx (the quick digits_resnet_small, the heavy digits_resnet_large), fed by the canonical
preprocessing, never from the pattern's own code. Queue facts (stored input bytes, stream
length, pending entries) are read from Redis itself.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.support.image_checks import encode
from tests.support.launcher import RunningPattern
from tests.support.pattern import REPO_ROOT
from tests.support.polling import wait_for

PATTERN = "chapter4_serving_patterns/sync_async_pattern"
PATTERN_DIR = REPO_ROOT / PATTERN
SYNC_MODEL_DIR = PATTERN_DIR / "models" / "digits_resnet_small"
ASYNC_MODEL_DIR = PATTERN_DIR / "models" / "digits_resnet_large"
DATA_DIR = PATTERN_DIR / "data"
MAX_IMAGE_BYTES = 5 * 1024 * 1024  # the settings default, which the tests do not change
SETTLED = ("succeeded", "dead")
Json = dict[str, Any]


def require_models() -> None:
    """Both models and the held-out images, or a failure that says how to get them."""
    needed = [SYNC_MODEL_DIR / "model.onnx", ASYNC_MODEL_DIR / "model.onnx",
              DATA_DIR / "sample.png", DATA_DIR / "test_png", DATA_DIR / "test_jpeg"]  # fmt: skip
    missing = [path for path in needed if not path.exists()]
    if missing:
        pytest.fail(f"{missing[0]} is missing: run `make models` in {PATTERN}")


def unique_prefix() -> str:
    """A queue of its own in a shared Redis (QUEUE_PREFIX)."""
    return f"test-{uuid.uuid4().hex[:10]}"


def post(client: httpx.Client, image: bytes, key: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post("/predict", json={"image_data": encode(image)}, headers=headers)


def answered(response: httpx.Response, *, sync: bool = True, queued: bool = True) -> Json:
    """A 200 answer of POST /predict with the expected shape: a quick answer (or its error),
    a queued job (or the reason it is not)."""
    assert response.status_code == 200, response.text
    body: Json = response.json()
    assert set(body) == {"job_id", "sync", "sync_error", "async"}, body
    if sync:
        assert body["sync_error"] is None, body
        assert set(body["sync"]) == {"model", "version", "label", "prediction"}, body
    else:
        assert body["sync"] is None and body["sync_error"]["code"], body
    if queued:
        assert uuid.UUID(body["job_id"]).version == 4
        assert body["async"]["status"] == "queued", body
        assert response.headers["Location"] == f"/job/{body['job_id']}"
    else:
        assert body["job_id"] is None and body["async"]["status"] == "unavailable", body
        assert "Location" not in response.headers
    return body


def job(client: httpx.Client, job_id: str) -> Json:
    response = client.get(f"/job/{job_id}")
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


def wait_status(
    client: httpx.Client, job_id: str, statuses: Sequence[str], *, timeout_s: float = 30.0
) -> Json:
    def reached() -> Json | None:
        current = job(client, job_id)
        return current if current["status"] in statuses else None

    found: Json = wait_for(reached, timeout_s=timeout_s, what=f"job {job_id} {statuses}")
    return found


def wait_all(
    client: httpx.Client, job_ids: Sequence[str], *, timeout_s: float = 60.0
) -> list[Json]:
    """Every job settled (succeeded or dead), in the order given."""
    settled: dict[str, Json] = {}

    def all_settled() -> bool:
        for job_id in job_ids:
            if job_id not in settled:
                current = job(client, job_id)
                if current["status"] in SETTLED:
                    settled[job_id] = current
        return len(settled) == len(job_ids)

    wait_for(all_settled, timeout_s=timeout_s, what=f"{len(job_ids)} jobs settled")
    return [settled[job_id] for job_id in job_ids]


class QueueKeys:
    """The Redis keys of one queue (QUEUE_PREFIX), as the pattern documents them."""

    def __init__(self, redis_url: str, prefix: str) -> None:
        self.client = redis.Redis.from_url(redis_url, socket_timeout=5)
        self.prefix = prefix

    def stored_input(self, job_id: str) -> bytes | None:
        data = self.client.get(f"{self.prefix}:input:{job_id}")
        assert data is None or isinstance(data, bytes)
        return data

    def recorded_sha256(self, job_id: str) -> str:
        value = self.client.hget(f"{self.prefix}:job:{job_id}", "input_sha256")
        assert isinstance(value, bytes), value
        return value.decode()

    def stream_length(self) -> int:
        return int(self.client.xlen(f"{self.prefix}:jobs"))

    def job_records(self) -> int:
        return sum(1 for _ in self.client.scan_iter(f"{self.prefix}:job:*"))

    def pending(self) -> int:
        summary = self.client.xpending(f"{self.prefix}:jobs", "workers")
        return int(summary["pending"])


def metric(text: str, name: str) -> float:
    """The value of one sample line (`name` with its labels, exactly) of a Prometheus text."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def process_metric(running: RunningPattern, process: str, name: str) -> float:
    return metric(httpx.get(running.url(process) + "/metrics", timeout=5).text, name)


@contextmanager
def stopped(running: RunningPattern, process: str) -> Iterator[None]:
    """SIGSTOP a process for the block (a hung process), SIGCONT after it."""
    running.processes[process].signal(signal.SIGSTOP)
    try:
        yield
    finally:
        running.processes[process].signal(signal.SIGCONT)


def killed(running: RunningPattern, process: str) -> None:
    """SIGKILL a process (a crash) and wait until it is gone."""
    running.processes[process].signal(signal.SIGKILL)
    wait_for(lambda: not running.processes[process].alive(), what=f"{process} gone")


def images_of(directory: Path, names: Sequence[str]) -> list[bytes]:
    return [(directory / name).read_bytes() for name in names]
