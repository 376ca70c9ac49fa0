"""What the service accepts as MODEL_DIR (SPEC 0.2 rules 2-3, SPEC 2.1 acceptance 2 as a drill):
a classifier exported with skl2onnx's defaults (probabilities as a ZipMap) is served like the
plain one; an empty directory or a tampered model.onnx stops the process at start, non-zero,
with one JSON log line naming the path."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tests.chapter4_serving_patterns.web_single_pattern.conftest import running_service
from tests.support.tabular import Oracle

ZIPMAP_NAME = "iris_svc_zipmap"
ZIPMAP_OUTPUT = "output_probability"


def with_zipmap(plain: Oracle, directory: Path) -> Path:
    """iris_svc as skl2onnx exports a classifier by default: `probabilities` goes through an
    ai.onnx.ml ZipMap into `output_probability`, a sequence of {class: probability} maps."""
    model = onnx.load(plain.directory / "model.onnx")
    graph = model.graph
    classes = [int(key) for key in sorted(plain.labels, key=int)]
    graph.node.append(
        helper.make_node(
            "ZipMap",
            ["probabilities"],
            [ZIPMAP_OUTPUT],
            domain="ai.onnx.ml",
            classlabels_int64s=classes,
        )
    )
    probability = helper.make_tensor_type_proto(TensorProto.FLOAT, [])
    maps = helper.make_sequence_type_proto(
        helper.make_map_type_proto(TensorProto.INT64, probability)
    )
    outputs = [output for output in graph.output if output.name != "probabilities"]
    del graph.output[:]
    graph.output.extend([*outputs, helper.make_value_info(ZIPMAP_OUTPUT, maps)])
    onnx.checker.check_model(model, full_check=True)
    directory.mkdir()
    (directory / "model.onnx").write_bytes(model.SerializeToString())
    shutil.copy(plain.directory / "label.json", directory / "label.json")
    digest = hashlib.sha256((directory / "model.onnx").read_bytes()).hexdigest()
    metadata = {
        **plain.metadata,
        "name": ZIPMAP_NAME,
        "sha256": digest,
        "version": digest[:12],
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [-1]},
            {"name": ZIPMAP_OUTPUT, "datatype": "FP32", "shape": [-1, len(classes)]},
        ],
    }
    (directory / "metadata.json").write_text(json.dumps(metadata))
    return directory


def test_a_zipmap_classifier_is_served_like_the_plain_one(
    oracle: Oracle, iris_rows: list[list[float]], tmp_path: Path
) -> None:
    directory = with_zipmap(oracle, tmp_path / ZIPMAP_NAME)
    label, probabilities = oracle.run(iris_rows)
    with running_service({"MODEL_DIR": str(directory)}) as service:
        response = service.post("/predict", {"data": iris_rows})
        assert response.status_code == 200, response.text
        assert response.headers["X-Model-Name"] == ZIPMAP_NAME
        got = np.asarray(response.json()["prediction"])
        np.testing.assert_allclose(got, probabilities, rtol=0, atol=1e-6)
        labels = service.post("/predict/label", {"data": iris_rows}).json()["prediction"]
        assert labels == oracle.label_names(iris_rows)
        flat = [value for row in iris_rows for value in row]
        body = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [150, 4], "data": flat}]}
        answer = service.post(f"/v2/models/{ZIPMAP_NAME}/infer", body).json()
        outputs = {output["name"]: output for output in answer["outputs"]}
        assert outputs["label"]["data"] == label.tolist()
        assert outputs["probabilities"]["datatype"] == "FP32"
        assert outputs["probabilities"]["shape"] == [150, 3]
        assert outputs["probabilities"]["data"] == got.ravel().tolist()


def refusal(model_dir: Path) -> dict[str, Any]:
    """Start the service on `model_dir`, expect the process to exit at once; its log line."""
    with pytest.raises(RuntimeError) as raised, running_service({"MODEL_DIR": str(model_dir)}):
        pass
    # the launcher gives up as soon as the process exits, with the exit status and the log
    reason = str(raised.value)
    assert "api exited with 1" in reason, reason
    errors: list[dict[str, Any]] = [
        json.loads(line)
        for line in reason.splitlines()
        if line.startswith("{") and json.loads(line)["level"] == "ERROR"
    ]
    assert len(errors) == 1, reason
    assert errors[0]["model_dir"] == str(model_dir)
    assert str(model_dir) in errors[0]["message"]
    return errors[0]


def test_an_empty_model_dir_stops_the_service(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert "missing model.onnx" in refusal(tmp_path / "empty")["message"]


def test_a_tampered_model_stops_the_service(oracle: Oracle, tmp_path: Path) -> None:
    directory = tmp_path / "iris_svc"
    shutil.copytree(oracle.directory, directory)
    with (directory / "model.onnx").open("ab") as model:
        model.write(b"\x00")
    line = refusal(directory)
    assert oracle.metadata["sha256"] in line["message"]
