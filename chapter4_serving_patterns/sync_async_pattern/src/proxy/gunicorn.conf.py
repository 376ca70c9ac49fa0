# ruff: noqa: N999 (gunicorn's conventional file name)
"""gunicorn settings of `proxy`, for its Procfile line:

    gunicorn --config src/proxy/gunicorn.conf.py 'src.proxy.app:create_app()'

It listens on HOST:PROXY_PORT with WORKERS workers (src.configurations); the master refuses a
MODEL_DIR whose metadata.json and label.json do not describe an image classifier, or a missing
sample image, before any worker forks. The rest is src/gunicorn_hooks.py, shared with pred.
"""

from __future__ import annotations

import sys
from pathlib import Path

# gunicorn reads this file before it puts its working directory on sys.path; the pattern
# directory must be importable here (no PYTHONPATH in the image).
_PATTERN_DIR = str(Path(__file__).resolve().parents[2])
if _PATTERN_DIR not in sys.path:
    sys.path.insert(0, _PATTERN_DIR)

from src.configurations import ProxySettings  # noqa: E402
from src.gunicorn_hooks import child_exit, on_exit, server_settings, starting  # noqa: E402
from src.held import read_classifier, read_sample  # noqa: E402

_settings = ProxySettings()
# bind, workers, worker_class, logconfig_dict, ...: gunicorn reads this module's names.
globals().update(server_settings(_settings, _settings.proxy_port, "proxy"))


def on_starting(server: object) -> None:
    starting("proxy", lambda: read_sample(_settings, read_classifier(_settings)))


__all__ = ["child_exit", "on_exit", "on_starting"]
