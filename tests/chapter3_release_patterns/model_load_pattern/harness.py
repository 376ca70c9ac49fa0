"""What the model_load_pattern tests share: the two published versions, the loader line, the
registry's own view of a version, and a local http server for http:// sources.

Oracles come from the model directories themselves (hashlib, onnxruntime) and from the model DB's
HTTP API, never from the pattern's loader code.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime
import pytest
from numpy.typing import NDArray

from tests.support.launcher import base_environment, job_environment, run_job
from tests.support.pattern import REPO_ROOT, Pattern

PATTERN = Pattern.load(REPO_ROOT / "chapter3_release_patterns/model_load_pattern")
# Version 1: what `publish` registers (chapter 2's trained iris_svc); version 2: what
# `publish_retrained` registers (`make models`: the same trainer, seed 7).
V1_DIR = REPO_ROOT / "chapter2_training/iris_sklearn_svc/models/iris_svc"
V2_DIR = PATTERN.directory / "models/retrained/iris_svc"
FILES = ("model.onnx", "label.json", "metadata.json")
EXIT_LOADED, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_MISMATCH, EXIT_UNREACHABLE = 0, 1, 2, 3, 4
# Every retry and backoff of the fetcher shortened: failures answer within about a second.
FAST_FETCH = {
    "FETCH_TIMEOUT_S": "2",
    "FETCH_RETRIES": "1",
    "FETCH_BACKOFF_S": "0.05",
    "FETCH_BACKOFF_MAX_S": "0.2",
}


@dataclass(frozen=True)
class ModelVersion:
    directory: Path

    @functools.cached_property
    def metadata(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads((self.directory / "metadata.json").read_text())
        return value

    @property
    def sha256(self) -> str:
        return hashlib.sha256((self.directory / "model.onnx").read_bytes()).hexdigest()

    @property
    def version(self) -> str:
        return self.sha256[:12]

    def probabilities(self, rows: list[list[float]]) -> NDArray[np.float32]:
        """onnxruntime on this directory's model.onnx: the oracle of every prediction."""
        session = onnxruntime.InferenceSession(
            str(self.directory / "model.onnx"), providers=["CPUExecutionProvider"]
        )
        features = np.asarray(rows, dtype=np.float32)
        output: NDArray[np.float32] = session.run(["probabilities"], {"input": features})[0]
        return output


def published(directory: Path) -> ModelVersion:
    if not (directory / "model.onnx").is_file():
        pytest.fail(f"{directory} is missing: run `make models` in {PATTERN.relative}")
    return ModelVersion(directory)


def v1() -> ModelVersion:
    return published(V1_DIR)


def v2() -> ModelVersion:
    return published(V2_DIR)


def holds(directory: Path, version: ModelVersion) -> bool:
    """Whether `directory` holds exactly the three files of `version`."""
    return all(
        (directory / name).is_file()
        and (directory / name).read_bytes() == (version.directory / name).read_bytes()
        for name in FILES
    )


# --- jobs and the loader line --------------------------------------------------------------------


def job(name: str, env: dict[str, str]) -> str:
    return run_job(PATTERN, name, env)


def loader_argv(source: str, dest: Path) -> list[str]:
    """The Procfile.jobs `loader` line with another source and destination."""
    argv = list(PATTERN.job_commands["loader"].argv)
    argv[argv.index("--source") + 1] = source
    argv[argv.index("--dest") + 1] = str(dest)
    return argv


def run_loader(
    source: str, dest: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = PATTERN.job_commands["loader"]
    environment = job_environment(command, base_environment(PATTERN, {**FAST_FETCH, **(env or {})}))
    return subprocess.run(
        loader_argv(source, dest),
        cwd=PATTERN.directory,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# --- the model DB, asked directly ----------------------------------------------------------------


def registry_entry(model_db_url: str, ref: str) -> dict[str, Any]:
    response = httpx.get(f"{model_db_url}/v0.1/api/registry/iris/iris_svc/{ref}", timeout=5)
    response.raise_for_status()
    entry: dict[str, Any] = response.json()
    return entry


@contextlib.contextmanager
def tampered(artifact_root: Path, model_db_url: str, version: int) -> Iterator[Path]:
    """The stored model.onnx of a version with one byte flipped (the registry's record keeps the
    original sha256); restored afterwards."""
    model_id = registry_entry(model_db_url, str(version))["model_id"]
    stored = artifact_root / model_id / str(version) / "model.onnx"
    original = stored.read_bytes()
    stored.write_bytes(original[:-1] + bytes([original[-1] ^ 0xFF]))
    try:
        yield stored
    finally:
        stored.write_bytes(original)


# --- http:// sources -------------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def http_directory(directory: Path) -> Iterator[str]:
    """A local HTTP server on 127.0.0.1 serving `directory`; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
