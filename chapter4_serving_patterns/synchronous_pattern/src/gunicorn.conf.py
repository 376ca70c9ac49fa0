# ruff: noqa: N999 (gunicorn's conventional file name)
"""gunicorn settings for the Procfile line `gunicorn --config src/gunicorn.conf.py ...`.

Bind address and worker count come from src.configurations (HOST, PRED_PORT, WORKERS), never
from the command line, so the Procfile, the Dockerfile CMD and k8s share one command. The
master refuses a bad MODEL_DIR before it forks anything (one JSON log line naming the path, exit
status 1): it loads the model and runs its self-test once, then drops it, so a graph that does
not match its metadata or cannot batch is refused here too, not in every worker with a
traceback. It prepares a fresh Prometheus multiprocess directory before any worker starts and
forgets a worker's live values when it exits.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

# gunicorn reads this file before it puts its working directory on sys.path; the pattern
# directory must be importable here (no PYTHONPATH in the image).
_PATTERN_DIR = str(Path(__file__).resolve().parents[1])
if _PATTERN_DIR not in sys.path:
    sys.path.insert(0, _PATTERN_DIR)

from src.common.logging import logging_config  # noqa: E402
from src.configurations import Settings  # noqa: E402
from src.ml.model import Model  # noqa: E402
from src.ml.model_dir import ModelDirectoryError  # noqa: E402

_settings = Settings()

bind = f"{_settings.host}:{_settings.pred_port}"
workers = _settings.workers
worker_class = "uvicorn_worker.UvicornWorker"
logconfig_dict = logging_config(_settings.log_level)
accesslog = None  # RequestIdMiddleware writes the one access line, with the request id
graceful_timeout = 10
# gunicorn's control socket defaults to one path per user ($HOME/.gunicorn/gunicorn.ctl): two
# instances would fight over it, and the image's home is read-only. Nothing here uses it.
control_socket_disable = True
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
MODEL_DIRECTORY_REFUSED = 1


def on_starting(server: Any) -> None:
    # A worker that cannot load its model would fail to boot anyway; refusing here says why
    # once, before any fork, instead of once per worker with a traceback.
    try:
        # One thread: no onnxruntime thread pool may be alive when the master forks.
        Model.load(_settings.model_dir, threads=1)
    except ModelDirectoryError as error:
        logging.getLogger("synchronous_pattern").error(
            "refusing to start: %s", error, extra={"model_dir": str(error.directory)}
        )
        sys.exit(MODEL_DIRECTORY_REFUSED)
    # Fresh every start: values left by an earlier run would be added to this one's.
    # Set before the workers fork, and before prometheus_client is imported anywhere (it
    # chooses its value storage at import time).
    os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="synchronous-prometheus-")


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    shutil.rmtree(os.environ.get(MULTIPROC_ENV, ""), ignore_errors=True)
