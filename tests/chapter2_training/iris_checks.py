"""Checks shared by the four iris trainers' tests (SPEC 1.1 acceptance tests 5 and 6).

Written from SPEC 0.2 and 1.3, never from a trainer's own code: the oracles here read the model
directory with onnx / hashlib and the registry over HTTP. Each trainer's tests import this
module; the data set, estimator and thresholds stay in the trainer's own test files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnx
import onnxruntime
from numpy.typing import NDArray
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

from tests.support.launcher import launch
from tests.support.pattern import REPO_ROOT
from tests.support.ports import free_port

ARTIFACTS = ("model.onnx", "label.json", "metadata.json")
V2_DATATYPES: dict[int, str] = {onnx.TensorProto.FLOAT: "FP32", onnx.TensorProto.INT64: "INT64"}
API = "/v0.1/api"


def iris_float32() -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    features, target = load_iris(return_X_y=True)
    return features.astype(np.float32), target.astype(np.int64)


def stratified_split(
    seed: int = 42, test_size: float = 0.3
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.int64], NDArray[np.int64]]:
    """x_train, x_test, y_train, y_test as SPEC 1.1 behaviour 1 describes the split."""
    features, target = iris_float32()
    x_train, x_test, y_train, y_test = train_test_split(
        features, target, test_size=test_size, random_state=seed, stratify=target
    )
    return x_train, x_test, y_train, y_test


def run_cli(
    pattern: str, module: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m <module> args` in the trainer directory, as Procfile.jobs runs it.
    MODEL_DB_URL is unset unless `env` sets it: training alone never registers."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MODEL_DB_")}
    environment.update({"PYTHONPATH": str(REPO_ROOT / pattern), **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT / pattern,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def train(pattern: str, output_dir: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Train with the Procfile.jobs arguments into `output_dir`; returns the output."""
    result = run_cli(
        pattern,
        "src.train",
        *("--output-dir", str(output_dir), "--seed", "42", "--test-size", "0.3", *args),
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def run_onnx(directory: Path, rows: NDArray[np.float32] | list[list[float]]) -> dict[str, Any]:
    """Every output of model.onnx for `rows`, by name."""
    session = onnxruntime.InferenceSession(
        str(directory / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    names = [output.name for output in session.get_outputs()]
    values = session.run(None, {"input": np.asarray(rows, dtype=np.float32)})
    return dict(zip(names, values, strict=True))


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tensor_spec(value: onnx.ValueInfoProto) -> dict[str, Any]:
    tensor = value.type.tensor_type
    return {
        "name": value.name,
        "datatype": V2_DATATYPES[tensor.elem_type],
        "shape": [dim.dim_value if dim.HasField("dim_value") else -1 for dim in tensor.shape.dim],
    }


def assert_model_directory(directory: Path, task: str) -> dict[str, Any]:
    """SPEC 0.2 and acceptance test 5: the metadata describes the files next to it."""
    assert sorted(path.name for path in directory.iterdir()) == sorted(ARTIFACTS)
    metadata: dict[str, Any] = read_json(directory / "metadata.json")
    digest = sha256(directory / "model.onnx")
    graph = onnx.load(directory / "model.onnx")
    onnx.checker.check_model(graph)
    assert metadata["name"] == directory.name
    assert metadata["sha256"] == digest
    assert metadata["version"] == digest[:12]
    assert metadata["labels"] == read_json(directory / "label.json")
    assert metadata["task"] == task
    assert metadata["inputs"] == [tensor_spec(value) for value in graph.graph.input]
    assert metadata["outputs"] == [tensor_spec(value) for value in graph.graph.output]
    assert metadata["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
    opsets = {entry.domain: entry.version for entry in graph.opset_import}
    assert metadata["opset"] == opsets[""]
    assert metadata["framework"] == "scikit-learn"
    assert len(metadata["feature_names"]) == 4
    assert np.asarray(metadata["data_sample"]).shape == (1, 4)
    training = metadata["training"]
    assert training["seed"] == 42
    assert {"dataset", "split", "parameters", "command"} <= set(training)
    return metadata


def list_all(client: httpx.Client, path: str) -> list[dict[str, Any]]:
    response = client.get(path, params={"limit": 500})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()
    assert len(items) < 500
    return items


def assert_registered(base_url: str, directories: list[Path], alias: str) -> dict[str, int]:
    """Acceptance test 6: one project `iris`; per model directory one model, one experiment and
    one version holding the three files (equal sha256), which `alias` resolves to.
    Returns {model name: version}."""
    versions: dict[str, int] = {}
    with httpx.Client(base_url=base_url + API, timeout=10.0) as client:
        projects = list_all(client, "/projects/all")
        assert [project["project_name"] for project in projects] == ["iris"]
        models = list_all(client, f"/models/project-id/{projects[0]['project_id']}")
        assert sorted(model["model_name"] for model in models) == sorted(
            directory.name for directory in directories
        )
        by_name = {model["model_name"]: model["model_id"] for model in models}
        for directory in directories:
            model_id = by_name[directory.name]
            assert len(list_all(client, f"/experiments/model-id/{model_id}")) == 1
            [version] = list_all(client, f"/models/{model_id}/versions")
            number = int(version["version"])
            artifacts = client.get(f"/models/{model_id}/versions/{number}/artifacts").json()
            assert {item["filename"]: item["sha256"] for item in artifacts} == {
                name: sha256(directory / name) for name in ARTIFACTS
            }
            resolved = client.get(f"/registry/iris/{directory.name}/{alias}")
            assert resolved.status_code == 200, resolved.text
            assert resolved.json()["version"] == number
            versions[directory.name] = number
    return versions


@contextlib.contextmanager
def model_db(tmp: Path) -> Iterator[str]:
    """A real model DB on SQLite in `tmp`; yields its base URL."""
    env = {"DATABASE_URL": f"sqlite:///{tmp}/db.sqlite3", "ARTIFACT_ROOT": str(tmp / "artifacts")}
    with launch("chapter2_training/model_db", env=env) as running:
        yield running.url()


def assert_registers_once(pattern: str, names: list[str], base_url: str, tmp_path: Path) -> None:
    """Acceptance test 6: `train` with MODEL_DB_URL registers every model once with alias
    staging; the `register` step on the same files then creates nothing."""
    registry = {"MODEL_DB_URL": base_url, "MODEL_DB_TIMEOUT_S": "5"}
    output = train(pattern, tmp_path, "--alias", "staging", env=registry)
    for name in names:
        assert f"{name}  registered as version 1" in output
    directories = [tmp_path / name for name in names]
    assert assert_registered(base_url, directories, "staging") == dict.fromkeys(names, 1)

    again = run_cli(
        pattern, "src.register", "--model-dir", str(tmp_path), "--alias", "staging", env=registry
    )
    assert again.returncode == 0, again.stderr
    for name in names:
        assert f"{name}  unchanged: already registered as version 1" in again.stdout
    assert assert_registered(base_url, directories, "staging") == dict.fromkeys(names, 1)


def assert_unreachable_registry_fails(
    pattern: str, names: list[str], task: str, tmp_path: Path
) -> None:
    """A registry error ends `train` with one line and exit 1, after the models were written."""
    nowhere = {"MODEL_DB_URL": f"http://127.0.0.1:{free_port()}", "MODEL_DB_TIMEOUT_S": "1"}
    result = run_cli(pattern, "src.train", "--output-dir", str(tmp_path), env=nowhere)
    assert result.returncode == 1
    [message] = result.stderr.strip().splitlines()
    assert message.startswith("error: registration in the model DB at http://127.0.0.1:")
    for name in names:
        assert_model_directory(tmp_path / name, task)
