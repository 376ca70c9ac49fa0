"""Fault drills on the real processes (SPEC 3.7 acceptance tests 3 and 4; SPEC 0.10 rule 3):
pred_sync crashed or hung, pred_async crashed and restarted, a worker SIGKILLed while it holds
a job, Redis stopped with the model servers down.

One launch for the module on a Redis of its own (append-only, so that a restart keeps the
queue). Timings are settings set short here; every wait is a poll with a deadline and no test
asserts a duration. Each drill leaves the processes as it found them, so they run in any order.
The worker runs one consumer: a frozen (SIGSTOPped) process with two would reclaim its own
entries once it resumes, which would make attempt counts depend on timing."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import httpx
import pytest

from tests.chapter4_serving_patterns.sync_async_pattern.harness import (
    PATTERN,
    QueueKeys,
    answered,
    job,
    killed,
    post,
    process_metric,
    stopped,
    unique_prefix,
    wait_all,
    wait_status,
)
from tests.support.envelope import expect_error
from tests.support.image_checks import ImageOracle, LabelledImage
from tests.support.launcher import RunningPattern, launch
from tests.support.polling import wait_for
from tests.support.services import RedisServer

SUCCEEDED_TOTAL = 'worker_jobs_total{outcome="succeeded"}'
DRILL_ENV = {
    "VISIBILITY_TIMEOUT_S": "1",
    # pred_async may stay down for a few seconds: 0.2, 0.4, then 0.5 s between attempts
    "MAX_ATTEMPTS": "30",
    "RETRY_BACKOFF_S": "0.2",
    "RETRY_BACKOFF_MAX_S": "0.5",
    "PRED_TIMEOUT_MS": "30000",  # a hung pred_async holds jobs; it never times out here
    "SYNC_TIMEOUT_MS": "500",
    "WORKER_CONCURRENCY": "1",
    "HEARTBEAT_INTERVAL_S": "0.2",
    "HEARTBEAT_TTL_S": "1",
    "RECONNECT_MAX_S": "0.5",
    "PRED_PROBE_TIMEOUT_MS": "500",
    "MAX_QUEUE_LENGTH": "4",
}


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(appendonly=True).start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def prefix() -> str:
    return unique_prefix()


@pytest.fixture(scope="module")
def running(models: None, redis_server: RedisServer, prefix: str) -> Iterator[RunningPattern]:
    env = {"REDIS_URL": redis_server.url, "QUEUE_PREFIX": prefix, **DRILL_ENV}
    with launch(PATTERN, env=env) as running:
        yield running


@pytest.fixture(scope="module")
def proxy(running: RunningPattern) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=running.url(), timeout=30.0) as client:
        yield client


@pytest.fixture(scope="module")
def keys(redis_server: RedisServer, prefix: str) -> QueueKeys:
    return QueueKeys(redis_server.url, prefix)


def health(proxy: httpx.Client) -> dict[str, str]:
    body: dict[str, str] = proxy.get("/health/all").json()
    return body


def test_pred_sync_down_or_hung_the_job_still_succeeds(
    running: RunningPattern,
    proxy: httpx.Client,
    heavy_oracle: ImageOracle,
    quick_oracle: ImageOracle,
    png_images: list[LabelledImage],
) -> None:
    """Acceptance test 3, first half: pred_sync crashed → 200, `sync: null`, `sync_error`
    dependency_unavailable; hung (SIGSTOP) → `upstream_timeout` after SYNC_TIMEOUT_MS; the jobs
    succeed with the heavy model; after a restart the quick answers are back."""
    crashed, hung = png_images[100].data, png_images[101].data
    killed(running, "pred_sync")
    down = answered(post(proxy, crashed), sync=False)
    assert down["sync_error"]["code"] == "dependency_unavailable", down
    assert "unreachable" in down["sync_error"]["message"]
    assert health(proxy)["pred_sync"] == "ng" and health(proxy)["pred_async"] == "ok"
    running.start_process("pred_sync")
    with stopped(running, "pred_sync"):
        slow = answered(post(proxy, hung), sync=False)
        assert slow["sync_error"]["code"] == "upstream_timeout", slow
        assert "500 ms" in slow["sync_error"]["message"]
    settled = wait_all(proxy, [down["job_id"], slow["job_id"]])
    assert [s["status"] for s in settled] == ["succeeded"] * 2, settled
    assert [s["result"]["label"] for s in settled] == heavy_oracle.labels([crashed, hung])
    back = answered(post(proxy, crashed))
    assert back["sync"]["label"] == quick_oracle.labels([crashed])[0]
    text = proxy.get("/metrics").text
    assert 'proxy_sync_answers_total{outcome="upstream_timeout"}' in text


def test_pred_async_down_quick_answers_go_on_and_jobs_retry_until_it_is_back(
    running: RunningPattern,
    proxy: httpx.Client,
    heavy_oracle: ImageOracle,
    quick_oracle: ImageOracle,
    png_images: list[LabelledImage],
) -> None:
    """Acceptance test 3, second half: with pred_async crashed the quick answers continue and
    the jobs go to `retrying`; once pred_async is restarted they succeed."""
    images = [item.data for item in png_images[110:113]]
    killed(running, "pred_async")
    bodies = [answered(post(proxy, data)) for data in images]
    assert [b["sync"]["label"] for b in bodies] == quick_oracle.labels(images)
    retrying = wait_status(proxy, bodies[0]["job_id"], ["retrying"])
    assert retrying["error"]["code"] == "dependency_unavailable", retrying
    assert health(proxy)["pred_async"] == "ng" and health(proxy)["pred_sync"] == "ok"
    running.start_process("pred_async")
    settled = wait_all(proxy, [b["job_id"] for b in bodies])
    assert [s["status"] for s in settled] == ["succeeded"] * len(images), settled
    assert [s["result"]["label"] for s in settled] == heavy_oracle.labels(images)
    assert settled[0]["attempts"] >= 2 and settled[0]["error"] is None


def test_a_killed_worker_loses_no_job(
    running: RunningPattern,
    proxy: httpx.Client,
    keys: QueueKeys,
    heavy_oracle: ImageOracle,
    png_images: list[LabelledImage],
) -> None:
    """Acceptance test 4: the job a SIGKILLed worker held (pred_async hung, so it holds it) is
    reclaimed by the next worker after VISIBILITY_TIMEOUT_S; every job succeeds, once each."""
    images = [item.data for item in png_images[120:124]]  # MAX_QUEUE_LENGTH of them
    worker = running.processes["worker"]
    with stopped(running, "pred_async"):
        job_ids = [answered(post(proxy, data))["job_id"] for data in images]
        held = wait_for(
            lambda: [i for i in job_ids if job(proxy, i)["status"] == "running"],
            what="a job held by the worker",
        )
        worker.signal(signal.SIGKILL)
        assert worker.popen is not None and worker.popen.wait(timeout=10) == -signal.SIGKILL
        wait_for(lambda: health(proxy)["workers"] == "ng", what="worker gone")
        running.start_process("worker")  # another consumer, in a new process
    settled = wait_all(proxy, job_ids)
    assert [s["status"] for s in settled] == ["succeeded"] * len(images), settled
    assert [s["result"]["label"] for s in settled] == heavy_oracle.labels(images)
    for settled_job in settled:  # the held job was claimed twice: two attempts
        assert settled_job["attempts"] == (2 if settled_job["job_id"] in held else 1)
    assert process_metric(running, "worker", SUCCEEDED_TOTAL) == len(images)  # once each
    assert keys.stream_length() == 0 and keys.pending() == 0


def test_redis_down_sync_answers_alone_and_everything_down_is_503(
    *,
    running: RunningPattern,
    proxy: httpx.Client,
    redis_server: RedisServer,
    quick_oracle: ImageOracle,
    heavy_oracle: ImageOracle,
    png_images: list[LabelledImage],
) -> None:
    """Acceptance test 3, last part: Redis stopped → the quick answer alone, 200, `async:
    unavailable` with its reason; both model servers stopped as well → 503 with Retry-After;
    Redis back → jobs again, without restarting the proxy."""
    image = png_images[130].data
    redis_server.stop()
    try:
        alone = answered(post(proxy, image), queued=False)
        assert alone["sync"]["label"] == quick_oracle.labels([image])[0]
        assert alone["async"]["error"]["code"] == "dependency_unavailable", alone
        assert alone["async"]["model"] == heavy_oracle.name and alone["async"]["retry_after"] == 1
        expect_error(proxy.get("/ready"), 503, "dependency_unavailable")
        killed(running, "pred_sync")
        killed(running, "pred_async")
        refused = post(proxy, image)
        body = expect_error(refused, 503, "dependency_unavailable")
        assert refused.headers["Retry-After"] == "1"
        assert [d["loc"] for d in body["details"]] == [["sync"], ["async"]]
        assert health(proxy) == {"pred_sync": "ng", "pred_async": "ng", "redis": "ng",
                                 "workers": "ng", "worker_count": 0}  # fmt: skip
        assert proxy.get("/health").status_code == 200
    finally:
        redis_server.start()  # same port, same append-only file
    wait_for(lambda: proxy.get("/ready").status_code == 200, what="proxy ready again")
    running.start_process("pred_async")
    after = answered(post(proxy, image), sync=False)  # pred_sync still down
    assert after["sync_error"]["code"] == "dependency_unavailable"
    done = wait_status(proxy, after["job_id"], ["succeeded"])
    assert done["result"]["label"] == heavy_oracle.labels([image])[0]
    running.start_process("pred_sync")
    answered(post(proxy, image))


def test_a_full_queue_still_gives_the_quick_answer(
    running: RunningPattern,
    proxy: httpx.Client,
    keys: QueueKeys,
    quick_oracle: ImageOracle,
    png_images: list[LabelledImage],
) -> None:
    """QUEUE rule 8 here: past MAX_QUEUE_LENGTH waiting jobs the answer is still 200 with the
    quick model's label, `async: unavailable` with code `overflow` and no job stored."""
    images = [item.data for item in png_images[140:145]]
    with stopped(running, "worker"):
        queued = [answered(post(proxy, data))["job_id"] for data in images[:4]]
        records = keys.job_records()
        full = answered(post(proxy, images[4]), queued=False)
        assert full["async"]["error"]["code"] == "overflow", full
        assert "MAX_QUEUE_LENGTH" in full["async"]["error"]["message"]
        assert full["sync"]["label"] == quick_oracle.labels([images[4]])[0]
        assert keys.job_records() == records and keys.stream_length() == len(queued)
    assert [s["status"] for s in wait_all(proxy, queued)] == ["succeeded"] * len(queued)
    again = answered(post(proxy, images[4]))  # room again
    wait_status(proxy, again["job_id"], ["succeeded"])
    text = proxy.get("/metrics").text
    assert 'proxy_jobs_queued_total{outcome="overflow"}' in text
