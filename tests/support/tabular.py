"""A tabular T-API + V2 service (web_single and the patterns that copy it) through its real
gunicorn processes, and the oracle it is checked against: onnxruntime run in the test on the
same model directory (SPEC 0.10).

A pattern's conftest names its service with a session fixture `tabular_pattern` and imports the
fixtures below; its test modules import the shared checks (tests/support/tabular_api_checks.py,
tests/support/v2_checks.py). One service per test module (MAX_ROWS 150 so that the 413 bodies
stay small); the model-directory drills start their own with `running_service`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime
import pytest
from numpy.typing import NDArray
from sklearn.datasets import load_iris

from tests.support.launcher import RunningPattern, launch
from tests.support.pattern import REPO_ROOT

MAX_ROWS = 150


@dataclass(frozen=True)
class TabularPattern:
    """Which pattern the shared fixtures and checks drive, and how its service is started."""

    path: str  # relative to the repository root
    env: dict[str, str]

    @property
    def name(self) -> str:
        return Path(self.path).name

    @property
    def model_dir(self) -> Path:
        return REPO_ROOT / self.path / "models" / "iris_svc"


@dataclass(frozen=True)
class Oracle:
    """What the model directory says, read independently of the service's code."""

    directory: Path
    metadata: dict[str, Any]
    labels: dict[str, str]
    session: onnxruntime.InferenceSession

    def run(self, rows: Any) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """(label, probabilities) of the graph for `rows`."""
        label, probabilities = self.session.run(
            ["label", "probabilities"], {"input": np.asarray(rows, dtype=np.float32)}
        )
        return label, probabilities

    def label_names(self, rows: Any) -> list[str]:
        """The book's label: argmax of the probabilities, named through label.json."""
        return [self.labels[str(index)] for index in self.run(rows)[1].argmax(axis=1)]


def read_oracle(directory: Path) -> Oracle:
    if not (directory / "model.onnx").is_file():
        pytest.fail(f"{directory} is missing: run `make models` (in its pattern or at the top)")
    session = onnxruntime.InferenceSession(
        str(directory / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    return Oracle(
        directory=directory,
        metadata=json.loads((directory / "metadata.json").read_text()),
        labels=json.loads((directory / "label.json").read_text()),
        session=session,
    )


@dataclass
class Service:
    running: RunningPattern
    client: httpx.Client

    @property
    def url(self) -> str:
        return self.running.url()

    def post(self, path: str, body: Any, **kwargs: Any) -> httpx.Response:
        return self.client.post(path, json=body, **kwargs)


@pytest.fixture(scope="session")
def oracle(tabular_pattern: TabularPattern) -> Oracle:
    return read_oracle(tabular_pattern.model_dir)


@pytest.fixture(scope="session")
def iris_rows() -> list[list[float]]:
    """The 150 iris rows, as a client would send them."""
    rows: list[list[float]] = load_iris().data.tolist()
    return rows


@contextlib.contextmanager
def running_service(
    tabular: TabularPattern, env: Mapping[str, str] | None = None
) -> Iterator[Service]:
    service_env = {"MAX_ROWS": str(MAX_ROWS), **tabular.env, **(env or {})}
    with (
        launch(tabular.path, env=service_env) as running,
        httpx.Client(base_url=running.url(), timeout=30.0) as client,
    ):
        yield Service(running, client)


@pytest.fixture(scope="module")
def service(tabular_pattern: TabularPattern, oracle: Oracle) -> Iterator[Service]:
    """The pattern as `make dev` runs it, on a free port (oracle first: fails on no model)."""
    with running_service(tabular_pattern) as running:
        yield running
