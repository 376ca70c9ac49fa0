# ruff: noqa: N999 (gunicorn's conventional file name)
"""gunicorn settings for every Procfile line: `gunicorn --config src/gunicorn.conf.py ...`.

Bind address and worker count come from src.configurations, never from the command line, so
the Procfile, the Dockerfile CMD and k8s share one command per image. The port is the setting
named after the process: PROXY_PORT for the proxy, SERVICE_<NAME>_PORT for the service whose
Procfile line sets SERVICE_NAME=<name>. The master prepares a fresh Prometheus multiprocess
directory before any worker starts and forgets a worker's live values when it exits.
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

_settings = Settings()

bind = f"{_settings.host}:{_settings.port}"
workers = _settings.workers
worker_class = "uvicorn_worker.UvicornWorker"
logconfig_dict = logging_config(_settings.log_level)
accesslog = None  # RequestIdMiddleware writes the one access line, with the request id
graceful_timeout = 10
proc_name = _settings.process_name
# gunicorn's control socket defaults to one path per user ($HOME/.gunicorn/gunicorn.ctl): four
# instances would fight over it, and the image's home is read-only. Nothing here uses it.
control_socket_disable = True
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def on_starting(server: Any) -> None:
    refuse_unverified_model()
    # Fresh every start: values left by an earlier run would be added to this one's.
    # Set before the workers fork, and before prometheus_client is imported anywhere (it
    # chooses its value storage at import time).
    prefix = f"horizontal-{_settings.process_name}-prometheus-"
    os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix=prefix)


def refuse_unverified_model() -> None:
    """A service whose model directory cannot be served stops here, before any worker forks,
    with one log line naming the file and the reason (the proxy serves no model)."""
    if _settings.service_name is None:
        return
    from src.configurations import ServiceSettings
    from src.ml.model import ModelError, verify_model_directory

    model_dir = ServiceSettings().model_dir
    try:
        verify_model_directory(model_dir)
    except ModelError as error:
        logging.getLogger("service").critical(f"cannot serve the model: {error}")
        raise SystemExit(1) from None


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    shutil.rmtree(os.environ.get(MULTIPROC_ENV, ""), ignore_errors=True)
