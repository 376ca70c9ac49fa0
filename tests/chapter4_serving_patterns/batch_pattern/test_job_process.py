"""The Procfile `job` loop (SPEC 3.4 behaviour 4) on PostgreSQL: SIGTERM finishes the chunk in
hand and exits 0, /health and /metrics on JOB_PORT, a failed run does not end the loop; and
both processes refuse a model directory whose model.onnx does not match its metadata."""

from __future__ import annotations

import re
import shutil
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.chapter4_serving_patterns.batch_pattern.harness import (
    MODEL_DIR,
    PATTERN,
    SEED_ROWS,
    Table,
    expect_error,
    job,
    pattern,
    settings,
    start_command,
    wait_exit,
    wait_for,
)
from tests.support.launcher import launch
from tests.support.ports import free_port


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, flags=re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


def test_sigterm_in_loop_mode_commits_the_chunk_in_hand_and_exits_0(
    postgres_database: Callable[[], str],
) -> None:
    url = postgres_database()
    env = settings(url, BATCH_CHUNK_SIZE="100", BATCH_CHUNK_DELAY_S="0.3")
    table = Table(url)
    try:
        with launch(PATTERN, env=env, only=["job"]) as running:  # init_db, seed, then the loop
            loop = running.processes["job"]
            wait_for(lambda: table.count("status = 'predicted'") >= 100, "a first chunk")
            loop.signal(signal.SIGTERM)
            assert wait_exit(loop, timeout_s=30) == 0, loop.log_tail()
            assert "SIGTERM" in loop.log_text()
        predicted = table.count("status = 'predicted'")
        assert predicted % 100 == 0 and predicted < SEED_ROWS  # whole chunks, then it stopped
        assert table.count("status = 'pending'") == SEED_ROWS - predicted
        (run,) = table.runs()
        assert (run["status"], run["rows"]) == ("stopped", predicted)
        assert run["finished_at"] is not None
    finally:
        table.close()


def test_the_loop_serves_health_and_metrics_and_stops_while_it_waits(
    postgres_database: Callable[[], str],
) -> None:
    url = postgres_database()
    table = Table(url)
    try:
        with launch(PATTERN, env=settings(url), only=["job"]) as running:
            loop = running.processes["job"]
            wait_for(lambda: [r["status"] for r in table.runs()] == ["succeeded"], "a first run")
            metrics = httpx.get(loop.url + "/metrics", timeout=10).text
            health = httpx.get(loop.url + "/health", timeout=10)
            unknown = httpx.get(loop.url + "/nowhere", timeout=10)
            loop.signal(signal.SIGTERM)  # during the 60 s wait before the next run
            assert wait_exit(loop, timeout_s=30) == 0, loop.log_tail()
        assert metric(metrics, 'batch_rows_total{status="predicted"}') == SEED_ROWS
        assert metric(metrics, 'batch_runs_total{status="succeeded"}') == 1
        assert metric(metrics, "batch_pending_rows") == 0
        assert health.json() == {"health": "ok"}
        expect_error(unknown, 404, "not_found")
        assert table.count("status = 'predicted'") == SEED_ROWS
    finally:
        table.close()


def test_a_failed_run_does_not_end_the_loop(tmp_path: Path) -> None:
    port = free_port()
    nowhere = f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/batch"  # nothing listens
    env = settings(nowhere, JOB_PORT=str(port), HOST="127.0.0.1", DB_TIMEOUT_S="1")
    loop = start_command(pattern().processes["job"], env, tmp_path)
    try:
        wait_for(lambda: "run failed" in loop.log_text(), "the first run to fail", timeout_s=60)
        assert loop.alive(), loop.log_tail()
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200
    finally:
        loop.stop()


@pytest.fixture
def tampered_model_dir(tmp_path: Path) -> Path:
    copy = tmp_path / "iris_svc"
    shutil.copytree(MODEL_DIR, copy)
    with (copy / "model.onnx").open("ab") as model:
        model.write(b"\0")  # one byte more: no longer the model metadata.json describes
    return copy


def test_the_job_refuses_a_model_that_does_not_match_its_sha256(
    tampered_model_dir: Path, tmp_path: Path
) -> None:
    env = settings(f"sqlite:///{tmp_path / 'batch.sqlite3'}", MODEL_DIR=str(tampered_model_dir))
    with pytest.raises(RuntimeError, match="exited with 2") as refused:
        job("job_once", env)
    assert "does not match metadata.sha256" in str(refused.value)


def test_the_api_refuses_a_model_that_does_not_match_its_sha256(
    tampered_model_dir: Path, tmp_path: Path
) -> None:
    env = settings(
        f"sqlite:///{tmp_path / 'batch.sqlite3'}",
        MODEL_DIR=str(tampered_model_dir),
        API_PORT=str(free_port()),
        HOST="127.0.0.1",
    )
    api = start_command(pattern().processes["api"], env, Path(tempfile.mkdtemp()))
    try:
        assert wait_exit(api, timeout_s=60) != 0
        assert "does not match metadata.sha256" in api.log_text()
    finally:
        api.stop()
