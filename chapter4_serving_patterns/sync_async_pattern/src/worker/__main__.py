"""The worker: `python -m src.worker` (Procfile `worker`).

It serves /health and /metrics on HOST:WORKER_PORT and runs WORKER_CONCURRENCY queue consumers
(src/worker/consumer.py) until SIGTERM or Ctrl-C: then it stops reading, finishes the jobs in
hand and exits 0. Exit status 2: settings or model files it cannot use (nothing was served).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from pydantic import ValidationError

from src.common.logging import setup_logging
from src.configurations import WorkerSettings
from src.held import read_classifier
from src.jobs.connection import redis_client
from src.jobs.store import JobStore
from src.ml.model_dir import Unservable
from src.ml.pipeline import ImageClassifier
from src.pred_client import pred_client
from src.worker.consumer import Worker
from src.worker.status_server import start_status_server

logger = logging.getLogger("worker")
REFUSED = 2


async def serve(settings: WorkerSettings, classifier: ImageClassifier) -> None:
    redis = redis_client(settings)
    try:
        async with pred_client(settings, classifier) as pred:
            worker = Worker(JobStore(redis, settings), pred, classifier, settings)
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stopping, worker, signum)
            logger.info(
                "worker started",
                extra={
                    "worker": worker.name,
                    "concurrency": settings.worker_concurrency,
                    "queue_prefix": settings.queue_prefix,
                    "model_name": classifier.card.name,
                    "model_version": classifier.card.version,
                    "pred_url": settings.pred_url,
                },
            )
            await worker.run()
    finally:
        await redis.aclose()
    logger.info("worker stopped")


def stopping(worker: Worker, signum: int) -> None:
    logger.info("%s: finishing the jobs in hand, then stopping", signal.Signals(signum).name)
    worker.stop()


def main() -> int:
    try:
        settings = WorkerSettings()
    except ValidationError as error:
        setup_logging()
        logger.critical("refusing to start: %s", error)
        return REFUSED
    setup_logging(settings.log_level)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per call to pred otherwise
    try:
        classifier = read_classifier(settings)
    except Unservable as error:
        logger.critical("refusing to start: %s", error, extra={"path": str(error.path)})
        return REFUSED
    server = start_status_server(settings.host, settings.worker_port)
    try:
        asyncio.run(serve(settings, classifier))
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
