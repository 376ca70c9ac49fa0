"""One batch run (SPEC 3.4 behaviour 2-4): settle the pending backlog, chunk by chunk.

    run record (running) → horizon = highest pending id
    repeat: claim ≤ BATCH_CHUNK_SIZE pending rows (locked) → validate → one onnxruntime call
            → write predictions / errors + the run's counters → commit
    run record (succeeded | stopped | failed) → one summary log line

A crash loses at most the chunk being worked on: its transaction never commits, its locks go
with the connection, and its rows are still pending for the next run. A stop request (SIGTERM)
is honoured between chunks, so the chunk in hand is finished and committed first.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass

import numpy as np
from sqlalchemy.exc import SQLAlchemyError

from src.common.metrics import counter, gauge, histogram
from src.db import repository
from src.db.database import Database
from src.db.models import ERROR, FAILED, PENDING, PREDICTED, STOPPED, SUCCEEDED
from src.db.repository import ClaimedRow, Outcome
from src.ml.predictor import Predictor
from src.ml.validation import decode_stored, row_problem

logger = logging.getLogger("batch")
CHUNK_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10_000)


@dataclass(frozen=True)
class RunSummary:
    run_id: uuid.UUID
    status: str
    rows: int
    chunks: int
    errors: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


class Metrics:
    """The job's Prometheus metrics (served on JOB_PORT in loop mode)."""

    def __init__(self) -> None:
        self.runs = counter("batch_runs_total", "Batch runs by final status", ["status"])
        self.rows = counter("batch_rows_total", "Rows settled by batch runs", ["status"])
        self.chunk_rows = histogram(
            "batch_chunk_rows", "Rows claimed per chunk (the batch size)", buckets=CHUNK_BUCKETS
        )
        self.inference = histogram(
            "model_inference_seconds", "onnxruntime time per chunk", ["model", "version"]
        )
        self.run_seconds = histogram("batch_run_duration_seconds", "Duration of a batch run")
        self.pending = gauge(
            "batch_pending_rows", "Pending rows after the last run", multiprocess_mode="mostrecent"
        )
        self.last_success = gauge(
            "batch_last_success_timestamp_seconds",
            "When the last run that settled its whole backlog ended",
            multiprocess_mode="max",
        )


class BatchRunner:
    def __init__(
        self,
        db: Database,
        predictor: Predictor,
        *,
        chunk_size: int,
        chunk_delay_s: float = 0.0,
        stop: threading.Event | None = None,
    ) -> None:
        self.db = db
        self.predictor = predictor
        self.model = predictor.model
        self.chunk_size = chunk_size
        self.chunk_delay_s = chunk_delay_s
        self.stop = stop or threading.Event()
        self.metrics = Metrics()

    def run(self) -> RunSummary:
        """One run; raises on a database failure after recording the run as failed."""
        started = time.perf_counter()
        with self.db.write_session() as session:
            run_id = repository.start_run(session, self.model.version).run_id
        try:
            status = self._settle_backlog(run_id)
        except Exception:
            self._record_failure(run_id, time.perf_counter() - started)
            raise
        return self._finish(run_id, status, time.perf_counter() - started)

    def _settle_backlog(self, run_id: uuid.UUID) -> str:
        with self.db.read_session() as session:
            horizon = repository.backlog_horizon(session)
        while horizon is not None:
            if self.stop.is_set():
                return STOPPED
            if self._one_chunk(run_id, horizon) == 0:
                break
        return SUCCEEDED

    def _one_chunk(self, run_id: uuid.UUID, horizon: int) -> int:
        with self.db.write_session() as session:
            claimed = repository.claim_chunk(session, horizon, self.chunk_size)
            if not claimed:
                return 0
            outcomes = self._predict(claimed)
            if self.chunk_delay_s:
                self.stop.wait(self.chunk_delay_s)  # drills only: a slow chunk, still committed
            repository.settle_chunk(session, run_id, self.model.version, outcomes)
        errors = sum(1 for outcome in outcomes if outcome.error)
        self.metrics.chunk_rows.observe(len(claimed))
        self.metrics.rows.labels(PREDICTED).inc(len(outcomes) - errors)
        self.metrics.rows.labels(ERROR).inc(errors)
        return len(claimed)

    def _predict(self, claimed: list[ClaimedRow]) -> list[Outcome]:
        """Outcomes in claim order: rows that cannot be predicted get their reason, the others
        share one onnxruntime call."""
        width = self.model.feature_count
        outcomes: dict[int, Outcome] = {}
        valid_ids: list[int] = []
        valid_rows: list[list[float]] = []
        for row in claimed:
            values, problem = decode_stored(row.values_text)
            problem = problem or row_problem(values, width)
            if problem:
                outcomes[row.id] = Outcome(row.id, error=problem)
            else:
                valid_ids.append(row.id)
                valid_rows.append(values)
        if valid_rows:
            started = time.perf_counter()
            predictions = self.predictor.predict(np.asarray(valid_rows, dtype=np.float32))
            self.metrics.inference.labels(self.model.name, self.model.version).observe(
                time.perf_counter() - started
            )
            for row_id, probabilities, label in zip(
                valid_ids, predictions.probabilities.tolist(), predictions.labels, strict=True
            ):
                outcomes[row_id] = Outcome(row_id, prediction=probabilities, label=label)
        return [outcomes[row.id] for row in claimed]

    def _finish(self, run_id: uuid.UUID, status: str, seconds: float) -> RunSummary:
        with self.db.write_session() as session:
            run = repository.finish_run(session, run_id, status)
        with self.db.read_session() as session:
            pending = repository.counts(session)[PENDING]
        summary = RunSummary(run_id, status, run.rows, run.chunks, run.errors, seconds)
        self._record(summary, pending)
        return summary

    def _record_failure(self, run_id: uuid.UUID, seconds: float) -> None:
        # The database that just failed may still be away: the original error is the one to
        # raise, this record is best effort (the run then stays `running` in the table).
        try:
            self._finish(run_id, FAILED, seconds)
        except SQLAlchemyError as error:
            logger.warning("run %s failed and could not be recorded: %s", run_id, error)

    def _record(self, summary: RunSummary, pending: int) -> None:
        self.metrics.runs.labels(summary.status).inc()
        self.metrics.run_seconds.observe(summary.seconds)
        self.metrics.pending.set(pending)
        if summary.status == SUCCEEDED:
            self.metrics.last_success.set_to_current_time()
        logger.info(
            "run %s %s: %d rows in %d chunks, %d errors, %.3f s (%.0f rows/s), %d pending",
            summary.run_id,
            summary.status,
            summary.rows,
            summary.chunks,
            summary.errors,
            summary.seconds,
            summary.rows_per_second,
            pending,
            extra={
                "run_id": str(summary.run_id),
                "status": summary.status,
                "rows": summary.rows,
                "chunks": summary.chunks,
                "errors": summary.errors,
                "duration_s": round(summary.seconds, 4),
                "rows_per_s": round(summary.rows_per_second, 1),
                "pending": pending,
                "model_name": self.model.name,
                "model_version": self.model.version,
            },
        )
