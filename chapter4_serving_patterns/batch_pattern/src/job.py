"""The batch predictor: `python -m src.job --once` (Procfile.jobs `job_once`, the k8s CronJob)
or `python -m src.job --interval 60` (Procfile `job`: a run now, then one every interval).

Loop mode serves /health and /metrics on JOB_PORT; an exception in one run is logged and the
next run comes at the next interval. SIGTERM (or Ctrl-C) in either mode stops claiming chunks:
the chunk in hand is committed, the run is recorded as `stopped`, and the process exits 0.
Exit codes: 0 done (also with nothing to do), 1 a run failed (once mode), 2 unusable model
directory or settings.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from src.batch.runner import BatchRunner
from src.batch.status_server import start_status_server
from src.common.logging import setup_logging
from src.configurations import Settings
from src.db.database import Database
from src.ml.model import ModelDirectory, ModelError
from src.ml.predictor import Predictor

logger = logging.getLogger("batch")


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m src.job", description=__doc__)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--once", action="store_true", help="one run, then exit")
    mode.add_argument("--interval", type=float, metavar="SECONDS", help="run every SECONDS")
    arguments = parser.parse_args(argv)
    if arguments.interval is not None and arguments.interval <= 0:
        parser.error("--interval must be positive")
    return arguments


def stop_on_signals(stop: threading.Event) -> None:
    def request_stop(signum: int, frame: FrameType | None) -> None:
        logger.info("%s: finishing the chunk in hand, then stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)


def build_runner(settings: Settings, stop: threading.Event) -> tuple[BatchRunner, Database]:
    model = ModelDirectory.load(settings.model_dir)
    db = Database(settings.database_url, settings.db_timeout_s)
    runner = BatchRunner(
        db,
        Predictor(model),
        chunk_size=settings.batch_chunk_size,
        chunk_delay_s=settings.batch_chunk_delay_s,
        stop=stop,
    )
    logger.info(
        "batch job ready",
        extra={
            "model_name": model.name,
            "model_version": model.version,
            "database": db.engine.url.render_as_string(hide_password=True),
            "chunk_size": settings.batch_chunk_size,
        },
    )
    return runner, db


def run_once(runner: BatchRunner) -> int:
    try:
        runner.run()
    except Exception:
        logger.exception("run failed; its committed chunks stay, the rest stays pending")
        return 1
    return 0


def run_forever(runner: BatchRunner, settings: Settings, interval_s: float) -> int:
    server = start_status_server(settings.host, settings.job_port)
    logger.info("serving /health and /metrics on %s:%d", settings.host, settings.job_port)
    try:
        while not runner.stop.is_set():
            # One run's failure (database away, ...) must not end the loop: log, retry later.
            run_once(runner)
            runner.stop.wait(interval_s)
    finally:
        server.shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    settings = Settings()
    setup_logging(settings.log_level)
    stop = threading.Event()
    stop_on_signals(stop)
    try:
        runner, db = build_runner(settings, stop)
    except ModelError as error:
        logger.error("refusing to start: %s", error)
        return 2
    try:
        if arguments.once:
            return run_once(runner)
        return run_forever(runner, settings, arguments.interval)
    finally:
        db.dispose()


if __name__ == "__main__":
    sys.exit(main())
