"""What the batch pattern's end-to-end tests share: the oracle, the table seen through the
test's own SQL, and the pattern's processes and jobs started for real.

Expected values never come from the pattern's code: predictions from onnxruntime run here on
the model file, the model version from hashing that file, row states from SQL written here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import onnxruntime
import pytest
from sqlalchemy import Engine, create_engine, text

from tests.support import envelope
from tests.support.launcher import (
    RunningPattern,
    RunningProcess,
    base_environment,
    job_environment,
    launch,
    run_job,
)
from tests.support.pattern import REPO_ROOT, Command, Pattern
from tests.support.ports import wait_until

PATTERN = "chapter4_serving_patterns/batch_pattern"
PATTERN_DIR = REPO_ROOT / PATTERN
MODEL_DIR = PATTERN_DIR / "models" / "iris_svc"
ITEMS_FILE = PATTERN_DIR / "data" / "items.json"
SEED_ROWS = 1000
TOLERANCE = 1e-5
Json = dict[str, Any]
Row = dict[str, Any]


def require_models() -> None:
    missing = [path for path in (MODEL_DIR / "model.onnx", ITEMS_FILE) if not path.is_file()]
    if missing:
        pytest.fail(f"{missing[0]} is missing: run make models (in {PATTERN})", pytrace=False)


def pattern() -> Pattern:
    return Pattern.load(PATTERN_DIR)


def seed_values() -> list[list[float]]:
    """The values of data/items.json, in file order (read as plain JSON)."""
    return [item["values"] for item in json.loads(ITEMS_FILE.read_text())["items"]]


# --- the oracle ----------------------------------------------------------------------------------


class Oracle:
    """onnxruntime straight on model.onnx, with the model's own label map."""

    def __init__(self) -> None:
        self.session = onnxruntime.InferenceSession(str(MODEL_DIR / "model.onnx"))
        self.input = self.session.get_inputs()[0].name
        self.labels: dict[str, str] = json.loads((MODEL_DIR / "label.json").read_text())
        model_bytes = (MODEL_DIR / "model.onnx").read_bytes()
        self.version = hashlib.sha256(model_bytes).hexdigest()[:12]  # SPEC 0.2

    def probabilities(self, rows: Sequence[Sequence[float]]) -> npt.NDArray[np.float32]:
        features = np.asarray(rows, dtype=np.float32)
        (result,) = self.session.run(["probabilities"], {self.input: features})
        return np.asarray(result, dtype=np.float32)

    def label(self, probabilities: Sequence[float]) -> str:
        return self.labels[str(int(np.argmax(probabilities)))]

    def assert_predicted(self, rows: Sequence[Row]) -> None:
        """Each row is `predicted` with onnxruntime's probabilities and label, this model."""
        assert rows, "no rows to check"
        expected = self.probabilities([row["values"] for row in rows])
        for row, probabilities in zip(rows, expected, strict=True):
            assert row["status"] == "predicted", row
            assert row["error"] is None, row
            np.testing.assert_allclose(row["prediction"], probabilities, rtol=0, atol=TOLERANCE)
            assert row["label"] == self.label(probabilities), row
            assert row["model_version"] == self.version, row


# --- the table, through the test's own SQL -------------------------------------------------------


class Table:
    """The items and runs tables of one database, read and written with plain SQL."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self.engine: Engine = create_engine(database_url)

    def items(self, where: str = "TRUE") -> list[Row]:
        query = (
            'SELECT id, "values", prediction, label, model_version, status, error, run_id, '
            f"predicted_datetime FROM items WHERE {where} ORDER BY id"
        )
        with self.engine.connect() as connection:
            rows = [dict(row) for row in connection.execute(text(query)).mappings()]
        for row in rows:  # SQLite hands JSON back as text, psycopg2 already decoded
            for key in ("values", "prediction"):
                if isinstance(row[key], str):
                    row[key] = json.loads(row[key])
            row["run_id"] = None if row["run_id"] is None else str(row["run_id"]).replace("-", "")
        return rows

    def count(self, where: str = "TRUE") -> int:
        with self.engine.connect() as connection:
            return int(
                connection.execute(text(f"SELECT count(*) FROM items WHERE {where}")).one()[0]
            )

    def runs(self) -> list[Row]:
        query = (
            "SELECT run_id, status, rows, chunks, errors, started_at, finished_at "
            "FROM runs ORDER BY started_at"
        )
        with self.engine.connect() as connection:
            rows = [dict(row) for row in connection.execute(text(query)).mappings()]
        for row in rows:
            row["run_id"] = str(row["run_id"]).replace("-", "")
        return rows

    def insert(self, values_as_json: Sequence[str]) -> list[int]:
        """Rows as another system would write them: only `values`, as JSON text."""
        cast = "CAST(:values AS JSON)" if self.engine.dialect.name == "postgresql" else ":values"
        statement = text(f'INSERT INTO items ("values") VALUES ({cast}) RETURNING id')
        with self.engine.begin() as connection:
            return [
                int(connection.execute(statement, {"values": values}).one()[0])
                for values in values_as_json
            ]

    def no_open_transactions(self) -> bool:
        """No other session of this database is inside a transaction (PostgreSQL): a killed
        client's backend has rolled back and let go of its row locks."""
        query = (
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"
        )
        with self.engine.connect() as connection:
            return int(connection.execute(text(query)).one()[0]) == 0

    def close(self) -> None:
        self.engine.dispose()


# --- processes -----------------------------------------------------------------------------------


def settings(database_url: str, **extra: str) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "DB_TIMEOUT_S": "5", **extra}


def job(name: str, env: Mapping[str, str]) -> str:
    """Run one Procfile.jobs line to completion (raises on a non-zero exit); its output."""
    return run_job(pattern(), name, env)


def start_command(command: Command, env: Mapping[str, str], log_dir: Path) -> RunningProcess:
    """A Procfile or Procfile.jobs line as its own process group (for signals and waiting)."""
    process = RunningProcess(
        command=command,
        cwd=PATTERN_DIR,
        env=job_environment(command, base_environment(pattern(), env)),
        log_path=log_dir / f"{command.name}-{time.monotonic_ns()}.log",
        port=0,
    )
    process.start()
    return process


@contextlib.contextmanager
def started_jobs(
    name: str, env: Mapping[str, str], count: int = 1
) -> Iterator[list[RunningProcess]]:
    """`count` copies of a Procfile.jobs line started at once; stopped if still running."""
    log_dir = Path(tempfile.mkdtemp(prefix="batch-jobs-"))
    command = pattern().job_commands[name]
    processes = [start_command(command, env, log_dir) for _ in range(count)]
    try:
        yield processes
    finally:
        for process in processes:
            process.stop()


def wait_exit(process: RunningProcess, timeout_s: float = 60.0) -> int:
    assert process.popen is not None
    code = process.popen.wait(timeout=timeout_s)
    return code


def wait_for(condition: Any, what: str, timeout_s: float = 30.0) -> None:
    wait_until(condition, timeout_s=timeout_s, what=what, interval_s=0.02)


# --- a running API -------------------------------------------------------------------------------


@dataclass
class Api:
    running: RunningPattern
    client: httpx.Client
    table: Table
    env: dict[str, str]

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.client.get(path, params=params)

    def item(self, item_id: int) -> Json:
        response = self.client.get(f"/data/{item_id}")
        assert response.status_code == 200, response.text
        found: Json = response.json()
        return found

    def post_rows(self, rows: Sequence[Sequence[float]]) -> list[int]:
        response = self.client.post("/data", json={"data": rows})
        assert response.status_code == 201, response.text
        ids: list[int] = response.json()["ids"]
        return ids

    def run_once(self, **env: str) -> str:
        return job("job_once", {**self.env, **env})


@contextlib.contextmanager
def start_api(database_url: str, **env: str) -> Iterator[Api]:
    """The jobs of pattern.toml (init_db, seed) and the API alone: runs happen when a test
    says so (`run_once`), never behind its back."""
    merged = settings(database_url, **env)
    table = Table(database_url)
    try:
        with (
            launch(PATTERN, env=merged, only=["api"]) as running,
            httpx.Client(base_url=running.url(), timeout=30.0) as client,
        ):
            yield Api(running, client, table, merged)
    finally:
        table.close()


def expect_error(response: httpx.Response, status: int, code: str) -> Json:
    """The SPEC 0.6 envelope with this status and code, and no other key."""
    return envelope.expect_error(response, status, code, envelope_only=True)


def walk(client: httpx.Client, path: str, limit: int) -> tuple[list[Json], int]:
    """Every item of a list route, following `Link: <...>; rel="next"`; and the first page's
    X-Total-Count."""
    items: list[Json] = []
    url: str | None = f"{path}?limit={limit}"
    total: int | None = None
    while url is not None:
        response = client.get(url)
        assert response.status_code == 200, response.text
        total = int(response.headers["X-Total-Count"]) if total is None else total
        items.extend(response.json())
        next_link = response.links.get("next")
        url = next_link["url"] if next_link else None
    assert total is not None
    return items, total
