"""SPEC 3.4 acceptance tests 1, 3 and 4 on PostgreSQL, and the runs' edge cases: each test on a
database of its own, through the real `seed` and `job_once` processes."""

from __future__ import annotations

import json
import signal
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from tests.chapter4_serving_patterns.batch_pattern.harness import (
    PATTERN_DIR,
    SEED_ROWS,
    Oracle,
    Table,
    job,
    pattern,
    seed_values,
    settings,
    start_api,
    started_jobs,
    wait_exit,
    wait_for,
)
from tests.support.launcher import base_environment


def test_seed_twice_then_one_run_predicts_all_1000_as_onnxruntime(
    postgres_database: Callable[[], str], oracle: Oracle
) -> None:
    with start_api(postgres_database()) as api:  # init_db and seed ran once already
        output = job("seed", api.env)
        assert "0 inserted" in output, output
        all_rows = api.get("/data/all", limit=1)
        assert all_rows.headers["X-Total-Count"] == str(SEED_ROWS)
        assert api.table.count("status = 'pending'") == SEED_ROWS

        summary = api.run_once()

        assert f"{SEED_ROWS} rows" in summary, summary
        rows = api.table.items()
        assert len(rows) == SEED_ROWS
        oracle.assert_predicted(rows)
        unpredicted = api.get("/data/unpredicted")
        assert unpredicted.json() == [] and unpredicted.headers["X-Total-Count"] == "0"
        runs = api.get("/runs").json()
        assert len(runs) == 1
        assert runs[0] | {"rows": SEED_ROWS, "errors": 0, "status": "succeeded"} == runs[0]
        assert runs[0]["chunks"] == 2  # BATCH_CHUNK_SIZE 500 by default
        assert {row["run_id"] for row in rows} == {runs[0]["run_id"].replace("-", "")}


def test_two_runs_started_together_predict_every_row_exactly_once(
    migrated: Table, oracle: Oracle
) -> None:
    values = seed_values()
    rows = [json.dumps(values[index % len(values)]) for index in range(5000)]
    migrated.insert(rows)
    # small chunks that take a little while, so that the two runs overlap for certain
    env = settings(migrated.url, BATCH_CHUNK_SIZE="100", BATCH_CHUNK_DELAY_S="0.05")

    with started_jobs("job_once", env, count=2) as runs:
        codes = [wait_exit(run) for run in runs]

    assert codes == [0, 0], [run.log_tail() for run in runs]
    records = migrated.runs()
    assert len(records) == 2
    assert sum(record["rows"] for record in records) == 5000
    assert all(record["rows"] > 0 for record in records), records  # both took part
    items = migrated.items()
    oracle.assert_predicted(items)
    # the run that wrote each row counted it: no row was predicted by both
    written_by = Counter(item["run_id"] for item in items)
    assert written_by == {record["run_id"]: record["rows"] for record in records}


def test_a_killed_run_loses_only_its_uncommitted_chunk(migrated: Table, oracle: Oracle) -> None:
    env = settings(migrated.url, BATCH_CHUNK_SIZE="100", BATCH_CHUNK_DELAY_S="0.3")
    job("seed", env)

    with started_jobs("job_once", env) as (run,):
        wait_for(lambda: migrated.count("status = 'predicted'") >= 100, "a first committed chunk")
        run.signal(signal.SIGKILL)
        assert wait_exit(run) == -signal.SIGKILL

    statuses = Counter(item["status"] for item in migrated.items())
    committed = statuses["predicted"]
    assert set(statuses) == {"predicted", "pending"}
    assert committed % 100 == 0 and 100 <= committed < SEED_ROWS  # whole chunks only
    (killed,) = migrated.runs()
    assert (killed["status"], killed["finished_at"]) == ("running", None)
    assert (killed["rows"], killed["chunks"]) == (committed, committed // 100)
    before = {item["id"]: item for item in migrated.items("status = 'predicted'")}

    # the dead client's transaction is rolled back and its row locks gone before the next run
    wait_for(migrated.no_open_transactions, "the killed run's transaction to end")
    job("job_once", settings(migrated.url))

    items = migrated.items()
    oracle.assert_predicted(items)
    assert all(before[item["id"]] == item for item in items if item["id"] in before)
    _, completing = migrated.runs()
    assert (completing["status"], completing["rows"]) == ("succeeded", SEED_ROWS - committed)


def test_a_run_with_nothing_to_do_exits_0_and_records_itself(migrated: Table) -> None:
    output = job("job_once", settings(migrated.url))

    assert "0 rows" in output, output
    (record,) = migrated.runs()
    assert (record["status"], record["rows"], record["chunks"]) == ("succeeded", 0, 0)
    assert record["finished_at"] is not None


def test_models_and_migrations_agree(migrated: Table) -> None:
    result = subprocess.run(
        ["alembic", "check"],
        cwd=PATTERN_DIR,
        env=base_environment(pattern(), settings(migrated.url)),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_sqlite_smoke_two_runs_share_the_rows(tmp_path: Path, oracle: Oracle) -> None:
    """Locally the table is SQLite: one writer at a time, so two runs take turns by chunk."""
    url = f"sqlite:///{tmp_path / 'batch.sqlite3'}"
    env = settings(url, BATCH_CHUNK_SIZE="100", BATCH_CHUNK_DELAY_S="0.02")
    job("init_db", env)
    job("seed", env)

    with started_jobs("job_once", env, count=2) as runs:
        codes = [wait_exit(run) for run in runs]

    assert codes == [0, 0], [run.log_tail() for run in runs]
    table = Table(url)
    try:
        items = table.items()
        assert len(items) == SEED_ROWS
        oracle.assert_predicted(items)
        assert sum(record["rows"] for record in table.runs()) == SEED_ROWS
    finally:
        table.close()
