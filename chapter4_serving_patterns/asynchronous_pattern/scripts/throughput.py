"""`make throughput` (run by `make bench` too): what the queue costs and what it buys.

Starts the pattern with the launcher (proxy, one worker process with WORKER_CONCURRENCY 2,
pred; a Redis of the launcher's own) and measures, in alternating turns so that drift hits
both alike:

- through the queue: JOBS held-out PNG digits submitted by CLIENTS clients as fast as the proxy
  accepts them, then polled until every job is settled; completed jobs per second from the
  first submission to the last job's final state, and per job the queue wait (submission →
  a worker starts it) and the end-to-end time (submission → result written), read from the
  job records in Redis;
- pred directly: the same images, preprocessed beforehand by the bench client (the reference
  preprocessing), sent as V2 FP32 infer requests by CLIENTS clients: inferences per second.

The table goes between `<!-- throughput:start -->` and `<!-- throughput:end -->` in README.md.

    make throughput      # = cd <repository root> && PYTHONPATH=. python <this file>
"""

from __future__ import annotations

import base64
import json
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import redis

from tests.support.image_checks import ImageOracle
from tests.support.launcher import RunningPattern, launch
from tests.support.pattern import Pattern

PATTERN_DIR = Path(__file__).resolve().parents[1]
README = PATTERN_DIR / "README.md"
START, END = "<!-- throughput:start -->", "<!-- throughput:end -->"
JOBS = 500
CLIENTS = 4
TURNS = 3
PREFIX = "bench"


def images() -> list[bytes]:
    paths = sorted((PATTERN_DIR / "data" / "test_png").glob("[0-9]*.png"))
    if not paths:
        raise SystemExit("data/test_png holds no image: run `make models`")
    return [path.read_bytes() for path in paths]


def split(items: list[bytes], parts: int) -> list[list[bytes]]:
    return [items[index::parts] for index in range(parts)]


def submit_all(url: str, batch: list[bytes]) -> list[str]:
    job_ids = []
    with httpx.Client(base_url=url, timeout=30.0) as client:
        for data in batch:
            response = client.post("/predict", json={"image_data": base64.b64encode(data).decode()})
            response.raise_for_status()
            job_ids.append(response.json()["job_id"])
    return job_ids


def through_queue(
    running: RunningPattern, store: redis.Redis, data: list[bytes]
) -> tuple[float, list[float], list[float]]:
    """(completed jobs per second, queue waits in ms, end-to-end times in ms)."""
    started = time.time()
    with ThreadPoolExecutor(CLIENTS) as pool:
        job_ids = [i for ids in pool.map(submit_all, [running.url()] * CLIENTS,
                                         split(data, CLIENTS)) for i in ids]  # fmt: skip
    records: dict[str, dict[Any, Any]] = {}
    deadline = time.monotonic() + 600
    while len(records) < len(job_ids):
        for job_id in job_ids:
            if job_id not in records:
                fields = store.hgetall(f"{PREFIX}:job:{job_id}")
                if fields.get(b"status") in (b"succeeded", b"dead"):
                    records[job_id] = fields
        if time.monotonic() > deadline:
            raise SystemExit("jobs did not settle within 600 s")
        time.sleep(0.05)
    failed = [r for r in records.values() if r[b"status"] != b"succeeded"]
    if failed:
        raise SystemExit(f"{len(failed)} jobs did not succeed: {failed[0]}")
    finished = max(float(r[b"updated_at"]) for r in records.values())
    waits = [(float(r[b"started_at"]) - float(r[b"created_at"])) * 1000 for r in records.values()]
    ends = [(float(r[b"updated_at"]) - float(r[b"created_at"])) * 1000 for r in records.values()]
    return len(job_ids) / (finished - started), waits, ends


def infer_all(url: str, bodies: list[bytes]) -> None:
    with httpx.Client(timeout=30.0) as client:
        for body in bodies:
            response = client.post(url, content=body, headers={"Content-Type": "application/json"})
            response.raise_for_status()


def pred_directly(url: str, bodies: list[bytes]) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(infer_all, [url] * CLIENTS, split(bodies, CLIENTS)))
    return len(bodies) / (time.perf_counter() - started)


def infer_bodies(oracle: ImageOracle, data: list[bytes]) -> list[bytes]:
    bodies = []
    for tensor in oracle.tensors(data):
        batch = np.asarray(tensor, dtype=np.float32)[np.newaxis]
        inputs = [{"name": oracle.input_name, "datatype": "FP32", "shape": list(batch.shape),
                   "data": batch.ravel().tolist()}]  # fmt: skip
        bodies.append(json.dumps({"inputs": inputs}).encode())
    return bodies


def percentile(values: list[float], fraction: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(fraction * 100) - 1]


def table(queue_rates: list[float], direct_rates: list[float], waits: list[float],
          ends: list[float]) -> str:  # fmt: skip
    queue, direct = statistics.median(queue_rates), statistics.median(direct_rates)
    return "\n".join([
        f"Measured by `make throughput` on {datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} cores "
        f"({platform.machine()}), clients on the same machine; {JOBS} held-out 64x64 PNG digits "
        f"per turn, {CLIENTS} clients, median of {TURNS} turns; one worker process "
        "(WORKER_CONCURRENCY 2), one gunicorn worker in proxy and in pred.",
        "",
        "| path | throughput (per s) |",
        "|---|---:|",
        f"| through the queue: submit, worker preprocesses and calls pred, result stored | "
        f"{queue:.1f} jobs |",
        f"| pred directly: V2 infer of the same images, preprocessed by the client | "
        f"{direct:.1f} inferences |",
        f"| **ratio queue / direct** | **{queue / direct:.2f}** |",
        "",
        "| per job, all turns (ms) | p50 | p99 |",
        "|---|---:|---:|",
        f"| queue wait (submitted → a worker starts it) | {percentile(waits, 0.5):.1f} "
        f"| {percentile(waits, 0.99):.1f} |",
        f"| end to end (submitted → result stored) | {percentile(ends, 0.5):.1f} "
        f"| {percentile(ends, 0.99):.1f} |",
    ])  # fmt: skip


def write_into_readme(readme: Path, text: str) -> None:
    content = readme.read_text()
    if START not in content or END not in content:
        raise SystemExit(f"{readme} has no {START} … {END} markers")
    head, _, rest = content.partition(START)
    _, _, tail = rest.partition(END)
    readme.write_text(f"{head}{START}\n{text}\n{END}{tail}")


def main() -> int:
    pattern = Pattern.load(PATTERN_DIR)
    data = (images() * (JOBS // 250 + 1))[:JOBS]
    oracle = ImageOracle(PATTERN_DIR / "models" / "digits_resnet")
    bodies = infer_bodies(oracle, data)
    queue_rates, direct_rates, waits, ends = [], [], [], []
    env = {"QUEUE_PREFIX": PREFIX, "RESULT_TTL_S": "600"}
    with launch(pattern, env=env) as running:
        store = redis.Redis.from_url(running.env["REDIS_URL"], socket_timeout=10)
        infer_url = f"{running.url('pred')}/v2/models/{oracle.name}/infer"
        through_queue(running, store, data[:50])  # warm-up
        pred_directly(infer_url, bodies[:50])
        for _ in range(TURNS):
            rate, turn_waits, turn_ends = through_queue(running, store, data)
            queue_rates.append(rate)
            waits += turn_waits
            ends += turn_ends
            direct_rates.append(pred_directly(infer_url, bodies))
    text = table(queue_rates, direct_rates, waits, ends)
    write_into_readme(README, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
