"""What the asynchronous_pattern tests share: where the pattern, its model and its data are, the
job-polling helpers and a direct look into the queue's Redis keys.

Oracles come from tests/support/image_checks.py: onnxruntime in the test process on the same
model.onnx, fed by the canonical preprocessing (chapter2_training/cifar10/src/image_input.py,
loaded by file path), never from the pattern's own code. Queue facts (stream length, stored
input bytes, time-to-live) are read from Redis itself, not from the pattern's code.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.support.image_checks import Answer, encode
from tests.support.launcher import RunningPattern
from tests.support.pattern import REPO_ROOT
from tests.support.polling import wait_for

PATTERN = "chapter4_serving_patterns/asynchronous_pattern"
PATTERN_DIR = REPO_ROOT / PATTERN
MODEL_DIR = PATTERN_DIR / "models" / "digits_resnet"
DATA_DIR = PATTERN_DIR / "data"
MAX_IMAGE_BYTES = 5 * 1024 * 1024  # the settings default, which the tests do not change
SETTLED = ("succeeded", "dead")
Json = dict[str, Any]


def require_models() -> Path:
    """digits_resnet and the held-out images, or a failure that says how to get them."""
    needed = [MODEL_DIR / "model.onnx", DATA_DIR / "sample.png", DATA_DIR / "test_png"]
    missing = [path for path in needed if not path.exists()]
    if missing:
        pytest.fail(f"{missing[0]} is missing: run `make models` in {PATTERN}")
    return MODEL_DIR


def unique_prefix() -> str:
    """A queue of its own in a shared Redis (QUEUE_PREFIX)."""
    return f"test-{uuid.uuid4().hex[:10]}"


def submit(client: httpx.Client, image: bytes, key: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post("/predict", json={"image_data": encode(image)}, headers=headers)


def accepted(response: httpx.Response) -> str:
    """The job id of a 202 answer, after checking its shape."""
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "queued" and set(body) == {"job_id", "status"}, body
    assert uuid.UUID(body["job_id"]).version == 4
    assert response.headers["Location"] == f"/job/{body['job_id']}"
    return str(body["job_id"])


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


def queue_predictor(client: httpx.Client) -> Callable[[Sequence[bytes]], list[Answer]]:
    """An image_checks predictor through the queue: all images submitted first, then polled."""

    def predict(images: Sequence[bytes]) -> list[Answer]:
        job_ids = [accepted(submit(client, data)) for data in images]
        answers = []
        for settled in wait_all(client, job_ids):
            assert settled["status"] == "succeeded", settled
            result = settled["result"]
            answers.append(Answer([float(p) for p in result["prediction"]], result["label"]))
        return answers

    return predict


class QueueKeys:
    """The Redis keys of one queue (QUEUE_PREFIX), as the pattern documents them."""

    def __init__(self, redis_url: str, prefix: str) -> None:
        self.client = redis.Redis.from_url(redis_url, socket_timeout=5)
        self.prefix = prefix

    def stream_length(self) -> int:
        return int(self.client.xlen(f"{self.prefix}:jobs"))

    def job_records(self) -> int:
        return sum(1 for _ in self.client.scan_iter(f"{self.prefix}:job:*"))

    def input_key(self, job_id: str) -> str:
        return f"{self.prefix}:input:{job_id}"

    def record_ttl(self, job_id: str) -> int:
        return int(self.client.ttl(f"{self.prefix}:job:{job_id}"))

    def pending(self) -> int:
        summary = self.client.xpending(f"{self.prefix}:jobs", "workers")
        return int(summary["pending"])


def metric(text: str, name: str) -> float:
    """The value of one sample line (`name` with its labels, exactly) of a Prometheus text."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def worker_metric(running: RunningPattern, name: str) -> float:
    return metric(httpx.get(running.url("worker") + "/metrics", timeout=5).text, name)


@contextmanager
def stopped(running: RunningPattern, process: str) -> Iterator[None]:
    """SIGSTOP a process for the block (a hung process), SIGCONT after it."""
    import signal

    running.processes[process].signal(signal.SIGSTOP)
    try:
        yield
    finally:
        running.processes[process].signal(signal.SIGCONT)


def labels_of(model_dir: Path) -> Json:
    loaded: Json = json.loads((model_dir / "label.json").read_text())
    return loaded
