"""`make bench_job` (part of `make bench`): how fast one batch run settles rows, against
onnxruntime alone on the same rows, and write the table into the README.

For PostgreSQL (a private server, as the tests use) and SQLite, and each chunk size: ROWS
pending rows, one real `job_once` process (Procfile.jobs) with BATCH_CHUNK_SIZE set, timed by
its own run record (started_at → finished_at: claiming, validating, predicting, writing and
committing every chunk; not the process start). Then onnxruntime alone, one thread as in the
job, on the same rows in the same chunks. Median of REPEAT runs each; between runs every row is
set back to pending. Loopback only, bounded in rows and repeats.

    make bench_job     # = cd <repository root> && PYTHONPATH=. python <this file>
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnxruntime
from sqlalchemy import Engine, create_engine, text

from tests.support.launcher import run_job
from tests.support.pattern import Pattern
from tests.support.services import PostgresServer

PATTERN_DIR = Path(__file__).resolve().parents[1]
README = PATTERN_DIR / "README.md"
START, END = "<!-- bench-job:start -->", "<!-- bench-job:end -->"
ROWS = 20_000
CHUNK_SIZES = (100, 500, 2000)
REPEAT = 3
RAW_REPEAT = 21  # onnxruntime alone takes milliseconds: more samples steady its median


def sample_rows() -> list[list[float]]:
    items = json.loads((PATTERN_DIR / "data" / "items.json").read_text())["items"]
    return [items[index % len(items)]["values"] for index in range(ROWS)]


def prepare(url: str, pattern: Pattern, rows: list[list[float]]) -> Engine:
    run_job(pattern, "init_db", {"DATABASE_URL": url})
    engine = create_engine(url)
    cast = "CAST(:v AS JSON)" if engine.dialect.name == "postgresql" else ":v"
    with engine.begin() as connection:
        connection.execute(
            text(f'INSERT INTO items ("values") VALUES ({cast})'),
            [{"v": json.dumps(row)} for row in rows],
        )
    return engine


def reset(engine: Engine) -> None:
    """Every row pending again, the runs forgotten (and, on PostgreSQL, the dead rows gone)."""
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE items SET status = 'pending', prediction = NULL, label = NULL, "
                "model_version = NULL, run_id = NULL, predicted_datetime = NULL"
            )
        )
        connection.execute(text("DELETE FROM runs"))
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE items"))


def job_run_seconds(engine: Engine, pattern: Pattern, url: str, chunk: int) -> float:
    reset(engine)
    run_job(pattern, "job_once", {"DATABASE_URL": url, "BATCH_CHUNK_SIZE": str(chunk)})
    with engine.connect() as connection:
        started, finished, rows, status = connection.execute(
            text("SELECT started_at, finished_at, rows, status FROM runs")
        ).one()
        pending = connection.execute(
            text("SELECT count(*) FROM items WHERE status <> 'predicted'")
        ).scalar_one()
    if (rows, status, pending) != (ROWS, "succeeded", 0):
        raise SystemExit(f"run settled {rows} rows ({status}), {pending} not predicted")
    if isinstance(started, str):  # SQLite returns text for a raw query
        started, finished = datetime.fromisoformat(started), datetime.fromisoformat(finished)
    return float((finished - started).total_seconds())


def onnxruntime_seconds(rows: list[list[float]], chunk: int) -> float:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1  # as in the job
    model = PATTERN_DIR / "models" / "iris_svc" / "model.onnx"
    session = onnxruntime.InferenceSession(str(model), options)
    name = session.get_inputs()[0].name
    features = np.asarray(rows, dtype=np.float32)
    started = time.perf_counter()
    for offset in range(0, len(features), chunk):
        session.run(["probabilities"], {name: features[offset : offset + chunk]})
    return time.perf_counter() - started


def median_of(measure: Callable[[], float], repeat: int = REPEAT) -> float:
    return statistics.median(measure() for _ in range(repeat))


def measure(backend: str, url: str, pattern: Pattern, rows: list[list[float]]) -> list[str]:
    engine = prepare(url, pattern, rows)
    lines = []
    try:
        for chunk in CHUNK_SIZES:
            job_s = median_of(lambda: job_run_seconds(engine, pattern, url, chunk))  # noqa: B023
            raw_s = median_of(lambda: onnxruntime_seconds(rows, chunk), RAW_REPEAT)  # noqa: B023
            lines.append(
                f"| {backend} | {chunk} | {ROWS} | {job_s:.3f} | {ROWS / job_s:,.0f} | "
                f"{ROWS / raw_s:,.0f} | {raw_s / job_s:.3f} |"
            )
            print(lines[-1], flush=True)
    finally:
        engine.dispose()
    return lines


def render(lines: list[str]) -> str:
    header = [
        f"Measured by `make bench` (scripts/bench_job.py) on {datetime.now(UTC):%Y-%m-%d}, "
        f"{os.cpu_count()} cores ({platform.machine()}), database server on the same machine; "
        f"median of {REPEAT} job runs and {RAW_REPEAT} onnxruntime runs. Compare the ratio, "
        "not absolute figures across machines.",
        "",
        "| database | chunk size | rows | job run (s) | job rows/s | onnxruntime alone rows/s "
        "| job / onnxruntime |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    return "\n".join(header + lines)


def write_into_readme(table: str) -> None:
    text_ = README.read_text()
    if START not in text_ or END not in text_:
        raise SystemExit(f"{README} has no {START} … {END} markers")
    head, _, rest = text_.partition(START)
    _, _, tail = rest.partition(END)
    README.write_text(f"{head}{START}\n{table}\n{END}{tail}")


def main() -> None:
    pattern = Pattern.load(PATTERN_DIR)
    rows = sample_rows()
    lines: list[str] = []
    with ExitStack() as stack:
        server = PostgresServer().start()
        stack.callback(server.close)
        lines += measure("PostgreSQL", server.create_database("bench"), pattern, rows)
        directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-batch-"))
        lines += measure("SQLite", f"sqlite:///{directory}/batch.sqlite3", pattern, rows)
    table = render(lines)
    write_into_readme(table)
    print(table)


if __name__ == "__main__":
    main()
