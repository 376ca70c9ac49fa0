"""What the two gunicorn configurations share (src/prep/gunicorn.conf.py, src/pred/...).

Bind address and worker count come from src.configurations, never from the command line, so
the Procfile, the Dockerfile CMD and k8s share one command per process. The master refuses a
model directory (or, for prep, a sample image) it cannot serve before it forks anything (one
JSON log line naming the path, exit status 1), prepares a fresh Prometheus multiprocess
directory before any worker starts and forgets a worker's live values when it exits.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from src.common.logging import logging_config
from src.configurations import Settings
from src.ml.model_dir import Unservable

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
MODEL_DIRECTORY_REFUSED = 1


def server_settings(settings: Settings, port: int, process: str) -> dict[str, Any]:
    """The gunicorn settings of one process, as module-level names of its config file."""
    return {
        "bind": f"{settings.host}:{port}",
        "workers": settings.workers,
        "worker_class": "uvicorn_worker.UvicornWorker",
        "logconfig_dict": logging_config(settings.log_level),
        "accesslog": None,  # RequestIdMiddleware writes the one access line, with the request id
        "graceful_timeout": 10,
        "proc_name": process,
        # gunicorn's control socket defaults to one path per user ($HOME/.gunicorn/
        # gunicorn.ctl): two processes would fight over it, and the image's home is read-only.
        "control_socket_disable": True,
    }


def starting(process: str, check: Callable[[], object]) -> None:
    """on_starting: refuse what `check` refuses, then a fresh metrics directory."""
    try:
        check()
    except Unservable as error:
        logging.getLogger(process).critical(
            "refusing to start: %s", error, extra={"path": str(error.path)}
        )
        sys.exit(MODEL_DIRECTORY_REFUSED)
    # Fresh every start: values left by an earlier run would be added to this one's. Set before
    # the workers fork, and before prometheus_client is imported anywhere (it chooses its value
    # storage at import time).
    os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix=f"prep_pred-{process}-prometheus-")


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    shutil.rmtree(os.environ.get(MULTIPROC_ENV, ""), ignore_errors=True)
