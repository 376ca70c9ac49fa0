# ruff: noqa: N999 (gunicorn's conventional file name)
"""gunicorn settings of `pred`, for its Procfile line:

    gunicorn --config src/pred/gunicorn.conf.py 'src.pred.app:create_app()'

It listens on HOST:PRED_PORT with WORKERS workers (src.configurations); the master refuses a
MODEL_DIR whose model.onnx does not match its metadata before any worker forks. The rest is
src/gunicorn_hooks.py, shared with prep.
"""

from __future__ import annotations

import sys
from pathlib import Path

# gunicorn reads this file before it puts its working directory on sys.path; the pattern
# directory must be importable here (no PYTHONPATH in the image).
_PATTERN_DIR = str(Path(__file__).resolve().parents[2])
if _PATTERN_DIR not in sys.path:
    sys.path.insert(0, _PATTERN_DIR)

from src.configurations import PredSettings  # noqa: E402
from src.gunicorn_hooks import child_exit, on_exit, server_settings, starting  # noqa: E402
from src.ml.model_dir import read_model_directory  # noqa: E402

_settings = PredSettings()
# bind, workers, worker_class, logconfig_dict, ...: gunicorn reads this module's names.
globals().update(server_settings(_settings, _settings.pred_port, "pred"))


def on_starting(server: object) -> None:
    starting("pred", lambda: read_model_directory(_settings.model_dir))


__all__ = ["child_exit", "on_exit", "on_starting"]
