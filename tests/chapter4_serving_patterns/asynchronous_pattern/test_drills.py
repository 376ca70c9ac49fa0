"""Fault drills on the real processes (SPEC 3.3 acceptance tests 2, 3, 4, 6, 7 and 8; SPEC 0.10
rule 3): a worker SIGKILLed while it holds a job, pred stopped and restarted, a poison job, a
SIGTERMed worker, Redis stopped and restarted, results expiring, a full queue.

Timings are settings set short here (VISIBILITY_TIMEOUT_S=1, a short backoff); every wait is a
poll with a deadline and no test asserts a duration. The drills of the shared launch leave the
processes as they found them (a killed process is started again), so they run in any order.
The worker runs one consumer here: a frozen (SIGSTOPped) process with two consumers would
rightly reclaim its own entries from itself once it resumes, which would make the attempt
counts of these drills depend on timing."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.chapter4_serving_patterns.asynchronous_pattern.harness import (
    DATA_DIR,
    PATTERN,
    QueueKeys,
    accepted,
    job,
    metric,
    stopped,
    submit,
    unique_prefix,
    wait_all,
    wait_status,
    worker_metric,
)
from tests.support.envelope import expect_error
from tests.support.image_checks import ImageOracle, LabelledImage
from tests.support.launcher import RunningPattern, launch
from tests.support.polling import wait_for
from tests.support.services import RedisServer

SUCCEEDED_TOTAL = 'worker_jobs_total{outcome="succeeded"}'
DRILL_ENV = {
    "VISIBILITY_TIMEOUT_S": "1",
    "MAX_ATTEMPTS": "2",
    "RETRY_BACKOFF_S": "0.2",
    "PRED_TIMEOUT_MS": "30000",  # a hung pred holds jobs; it never times out in these drills
    "WORKER_CONCURRENCY": "1",
    "HEARTBEAT_INTERVAL_S": "0.2",
    "HEARTBEAT_TTL_S": "1",
    "RECONNECT_MAX_S": "0.5",
}


@pytest.fixture(scope="module")
def prefix() -> str:
    return unique_prefix()


@pytest.fixture(scope="module")
def running(digits_dir: Path, redis_url: str, prefix: str) -> Iterator[RunningPattern]:
    env = {"REDIS_URL": redis_url, "QUEUE_PREFIX": prefix, **DRILL_ENV}
    with launch(PATTERN, env=env) as running:
        yield running


@pytest.fixture(scope="module")
def proxy(running: RunningPattern) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=running.url(), timeout=30.0) as client:
        yield client


@pytest.fixture(scope="module")
def keys(redis_url: str, prefix: str) -> QueueKeys:
    return QueueKeys(redis_url, prefix)


def running_jobs(proxy: httpx.Client, job_ids: list[str]) -> list[str]:
    return [job_id for job_id in job_ids if job(proxy, job_id)["status"] == "running"]


def test_a_killed_worker_loses_no_job(
    running: RunningPattern,
    proxy: httpx.Client,
    keys: QueueKeys,
    oracle: ImageOracle,
    png_images: list[LabelledImage],
) -> None:
    """Acceptance test 2: the job a SIGKILLed worker held is reclaimed by the next consumer
    after VISIBILITY_TIMEOUT_S; every job succeeds, each executed once by the new worker."""
    items = png_images[40:46]
    worker = running.processes["worker"]
    with stopped(running, "pred"):  # a slow pred: the worker holds its job
        job_ids = [accepted(submit(proxy, item.data)) for item in items]
        held = wait_for(lambda: running_jobs(proxy, job_ids), what="a job held by the worker")
        worker.signal(signal.SIGKILL)
        assert worker.popen is not None and worker.popen.wait(timeout=10) == -signal.SIGKILL
        wait_for(lambda: proxy.get("/health/all").json()["workers"] == "ng", what="worker gone")
        assert running_jobs(proxy, job_ids) == held  # nobody finished or released it
        running.start_process("worker")  # another consumer, in a new process
    settled = wait_all(proxy, job_ids)
    assert [s["status"] for s in settled] == ["succeeded"] * len(items), settled
    assert [s["result"]["label"] for s in settled] == oracle.labels([i.data for i in items])
    for settled_job in settled:  # the held job was claimed twice: two attempts
        assert settled_job["attempts"] == (2 if settled_job["job_id"] in held else 1)
    assert worker_metric(running, SUCCEEDED_TOTAL) == len(items)  # each executed once
    assert keys.stream_length() == 0 and keys.pending() == 0
    assert proxy.get("/health/all").json()["workers"] == "ok"


def test_a_poison_job_dies_at_once_and_the_worker_goes_on(
    running: RunningPattern,
    proxy: httpx.Client,
    keys: QueueKeys,
    oracle: ImageOracle,
    png_images: list[LabelledImage],
) -> None:
    """Acceptance test 4: stored input replaced with garbage → dead after one attempt, with its
    error; the jobs after it succeed; the worker process is the same one."""
    worker = running.processes["worker"]
    assert worker.stop() == 0  # SIGTERM while idle: exits 0
    poison = accepted(submit(proxy, png_images[50].data))
    keys.client.set(keys.input_key(poison), b"garbage: no image decoder accepts this")
    running.start_process("worker")
    pid = worker.pid
    later = [accepted(submit(proxy, item.data)) for item in png_images[51:54]]
    dead = wait_status(proxy, poison, ["dead"])
    assert dead["attempts"] == 1 and dead["result"] is None
    assert dead["error"]["code"] == "unsupported_media_type" and dead["error"]["message"]
    body = expect_error(proxy.get(f"/job/{poison}/result"), 409, "conflict")
    assert "unsupported_media_type" in body["error"]
    settled = wait_all(proxy, later)
    assert [s["status"] for s in settled] == ["succeeded"] * 3
    assert [s["result"]["label"] for s in settled] == oracle.labels(
        [item.data for item in png_images[51:54]]
    )
    assert worker.alive() and worker.pid == pid
    letters = proxy.get("/dead-letter").json()
    listed = {entry["job_id"]: entry for entry in letters["jobs"]}
    assert listed[poison]["error"] == dead["error"]


def test_a_sigtermed_worker_finishes_its_job_and_exits_0(
    running: RunningPattern, proxy: httpx.Client, oracle: ImageOracle
) -> None:
    """Acceptance test 8."""
    worker = running.processes["worker"]
    image = (DATA_DIR / "test_png" / "0060.png").read_bytes()
    with stopped(running, "pred"):
        job_id = accepted(submit(proxy, image))
        wait_status(proxy, job_id, ["running"])
        worker.signal(signal.SIGTERM)
        assert worker.alive()  # it waits for pred with the job in hand
    assert worker.popen is not None and worker.popen.wait(timeout=30) == 0
    done = job(proxy, job_id)
    assert done["status"] == "succeeded" and done["attempts"] == 1
    assert done["result"]["label"] == oracle.labels([image])[0]
    assert "finishing the jobs in hand" in worker.log_text()
    running.start_process("worker")


def test_pred_down_retries_then_dead_letter_then_retry(
    running: RunningPattern, proxy: httpx.Client, oracle: ImageOracle
) -> None:
    """Acceptance test 3 with MAX_ATTEMPTS=2: a pred back within the backoff window → the job
    succeeds on its second attempt; a pred that stays down → dead, in /dead-letter, and
    `/dead-letter/{id}/retry` once pred is back → succeeded with its attempts reset."""
    pred = running.processes["pred"]
    first = (DATA_DIR / "test_png" / "0070.png").read_bytes()
    second = (DATA_DIR / "test_png" / "0071.png").read_bytes()
    pred.signal(signal.SIGKILL)
    wait_for(lambda: not pred.alive(), what="pred gone")
    expect_error(proxy.get("/label"), 503, "dependency_unavailable")
    assert proxy.get("/health/all").json()["pred"] == "ng"
    job_id = accepted(submit(proxy, first))
    retrying = wait_status(proxy, job_id, ["retrying"])
    assert retrying["attempts"] == 1 and retrying["error"]["code"] == "dependency_unavailable"
    with stopped(running, "worker"):  # no attempt happens while pred comes back
        running.start_process("pred")
    done = wait_status(proxy, job_id, ["succeeded"])
    assert done["attempts"] == 2 and done["error"] is None
    assert done["result"]["label"] == oracle.labels([first])[0]

    pred.signal(signal.SIGKILL)
    wait_for(lambda: not pred.alive(), what="pred gone")
    dead_id = accepted(submit(proxy, second))
    dead = wait_status(proxy, dead_id, ["dead"])
    assert dead["attempts"] == 2 and dead["error"]["code"] == "dependency_unavailable"
    expect_error(proxy.get(f"/job/{dead_id}/result"), 409, "conflict")
    letters = proxy.get("/dead-letter", params={"limit": 1}).json()
    assert letters["jobs"][0]["job_id"] == dead_id and letters["limit"] == 1
    assert letters["jobs"][0]["error"] == dead["error"]
    assert metric(proxy.get("/metrics").text, "dead_letters") >= 1
    running.start_process("pred")
    retried = proxy.post(f"/dead-letter/{dead_id}/retry")
    assert retried.status_code == 202 and retried.json() == {"job_id": dead_id, "status": "queued"}
    done = wait_status(proxy, dead_id, ["succeeded"])
    assert done["attempts"] == 1 and done["result"]["label"] == oracle.labels([second])[0]
    remaining = proxy.get("/dead-letter", params={"limit": 1000}).json()["jobs"]
    assert dead_id not in [entry["job_id"] for entry in remaining]
    expect_error(proxy.post(f"/dead-letter/{dead_id}/retry"), 409, "conflict")


def test_redis_outage_503_then_recovery_without_restarts_and_no_job_lost(
    digits_dir: Path,
    private_redis: Callable[..., RedisServer],
    oracle: ImageOracle,
    png_images: list[LabelledImage],
) -> None:
    """Acceptance test 7 (Redis half) on a Redis of its own with append-only persistence: jobs
    accepted before the outage all succeed after it; no process is restarted."""
    server = private_redis(appendonly=True)
    env = {"REDIS_URL": server.url, "QUEUE_PREFIX": unique_prefix(), **DRILL_ENV}
    env["MAX_ATTEMPTS"] = "3"  # a job reclaimed after the restart may count one more attempt
    items = png_images[80:84]
    with (
        launch(PATTERN, env=env) as running,
        httpx.Client(base_url=running.url(), timeout=30.0) as proxy,
    ):
        pids = {name: process.pid for name, process in running.processes.items()}
        with stopped(running, "pred"):
            job_ids = [accepted(submit(proxy, item.data)) for item in items]
            wait_for(lambda: running_jobs(proxy, job_ids), what="a job held by the worker")
            server.stop()
            refused = expect_error(submit(proxy, items[0].data), 503, "dependency_unavailable")
            assert "redis" in refused["error"].lower()
            assert refused and submit(proxy, items[0].data).headers["Retry-After"] == "1"
            expect_error(proxy.get("/ready"), 503, "dependency_unavailable")
            expect_error(proxy.get(f"/job/{job_ids[0]}"), 503, "dependency_unavailable")
            assert proxy.get("/health/all").json()["redis"] == "ng"
            assert proxy.get("/health").status_code == 200
            server.start()  # same port, same append-only file
            wait_for(lambda: proxy.get("/ready").status_code == 200, what="proxy ready again")
        settled = wait_all(proxy, job_ids)
        assert [s["status"] for s in settled] == ["succeeded"] * len(items), settled
        labels = oracle.labels([item.data for item in items])
        assert [s["result"]["label"] for s in settled] == labels
        after = accepted(submit(proxy, png_images[85].data))
        assert wait_status(proxy, after, ["succeeded"])["attempts"] == 1
        assert {name: process.pid for name, process in running.processes.items()} == pids
        assert all(process.alive() for process in running.processes.values())


def test_results_expire_and_a_full_queue_answers_503(
    digits_dir: Path, redis_url: str, png_images: list[LabelledImage]
) -> None:
    """Acceptance test 6 (RESULT_TTL_S=1: a finished job is 404 afterwards, its Idempotency-Key
    too) and backpressure (MAX_QUEUE_LENGTH=2: the third waiting job → 503 overflow)."""
    prefix = unique_prefix()
    env = {"REDIS_URL": redis_url, "QUEUE_PREFIX": prefix, "RESULT_TTL_S": "1",
           "MAX_QUEUE_LENGTH": "2"}  # fmt: skip
    keys = QueueKeys(redis_url, prefix)
    with (
        launch(PATTERN, env=env) as running,
        httpx.Client(base_url=running.url(), timeout=30.0) as proxy,
    ):
        image = png_images[90].data
        job_id = accepted(submit(proxy, image, key="ttl-key"))
        wait_status(proxy, job_id, ["succeeded"])
        wait_for(lambda: proxy.get(f"/job/{job_id}").status_code == 404, what="expired")
        expect_error(proxy.get(f"/job/{job_id}"), 404, "not_found")
        expect_error(proxy.get(f"/job/{job_id}/result"), 404, "not_found")
        renewed = accepted(submit(proxy, image, key="ttl-key"))  # the key expired too
        assert renewed != job_id
        wait_status(proxy, renewed, ["succeeded"])

        with stopped(running, "worker"):
            waiting = [accepted(submit(proxy, item.data)) for item in png_images[91:93]]
            full = expect_error(submit(proxy, png_images[93].data), 503, "overflow")
            assert "MAX_QUEUE_LENGTH" in full["error"]
            assert submit(proxy, image).headers["Retry-After"] == "1"
            assert metric(proxy.get("/metrics").text, "queue_depth") == 2
            assert keys.stream_length() == 2
        assert [s["status"] for s in wait_all(proxy, waiting)] == ["succeeded"] * 2
        accepted(submit(proxy, png_images[93].data))
