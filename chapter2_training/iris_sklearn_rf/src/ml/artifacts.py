"""ONNX export and the model directory of SPEC 0.2: model.onnx, label.json, metadata.json."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
import skl2onnx
import sklearn
from numpy.typing import NDArray
from onnx import TensorProto, helper
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.pipeline import Pipeline

# Ceilings only: skl2onnx writes the lowest opsets the graph's operators need.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
V2_DATATYPES: dict[int, str] = {
    TensorProto.FLOAT: "FP32",
    TensorProto.DOUBLE: "FP64",
    TensorProto.INT64: "INT64",
    TensorProto.INT32: "INT32",
    TensorProto.BOOL: "BOOL",
    TensorProto.STRING: "BYTES",
}


def to_onnx(pipeline: Pipeline, name: str, n_features: int) -> bytes:
    """The fitted pipeline as ONNX bytes: input `input` FP32 [N, n_features], outputs `label`
    and `probabilities` (a plain tensor, no ZipMap: SPEC 0.2 rule 1), same bytes every time."""
    scaler, classifier = pipeline.named_steps["scaler"], pipeline.steps[-1][1]
    model = convert_sklearn(
        pipeline,
        name=name,
        initial_types=[("input", FloatTensorType([None, n_features]))],
        options={
            id(classifier): {"zipmap": False},
            # A true division, as scikit-learn does, instead of the Scaler operator's
            # multiplication by 1/scale: the float32 results then equal scikit-learn's (bit for
            # bit on iris), which tree thresholds lying exactly on iris values need.
            id(scaler): {"div": "div"},
        },
        target_opset=TARGET_OPSET,
    )
    return canonical_bytes(model)


def canonical_bytes(model: onnx.ModelProto) -> bytes:
    # skl2onnx lists opset imports in set order, which changes between processes (hash
    # randomisation): sorted, the same estimator always gives the same bytes (SPEC 1.1 b. 4).
    versions = {entry.domain: entry.version for entry in model.opset_import}
    del model.opset_import[:]
    model.opset_import.extend(
        helper.make_opsetid(domain, versions[domain]) for domain in sorted(versions)
    )
    model.doc_string = ""
    onnx.checker.check_model(model, full_check=True)
    serialized: bytes = model.SerializeToString(deterministic=True)
    return serialized


def graph_signature(model: onnx.ModelProto) -> dict[str, Any]:
    """opset, inputs and outputs as the metadata states them (V2 datatypes, -1: dynamic axis)."""
    versions = {entry.domain: entry.version for entry in model.opset_import}
    return {
        "opset": versions[""],
        "inputs": [tensor_spec(value) for value in model.graph.input],
        "outputs": [tensor_spec(value) for value in model.graph.output],
    }


def tensor_spec(value: onnx.ValueInfoProto) -> dict[str, Any]:
    tensor = value.type.tensor_type
    return {
        "name": value.name,
        "datatype": V2_DATATYPES[tensor.elem_type],
        "shape": [dim.dim_value if dim.HasField("dim_value") else -1 for dim in tensor.shape.dim],
    }


def run(model_bytes: bytes, rows: list[list[float]]) -> list[NDArray[Any]]:
    """The exported graph on a few rows (the sample prediction train prints)."""
    session = onnxruntime.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    outputs: list[NDArray[Any]] = session.run(None, {"input": np.asarray(rows, np.float32)})
    return outputs


def write_model_dir(
    directory: Path, model_bytes: bytes, labels: dict[str, str], description: dict[str, Any]
) -> dict[str, Any]:
    """Write the three files and return the metadata. model.onnx goes last: its date is what
    `make models` compares, so a directory interrupted half-way is rebuilt."""
    digest = hashlib.sha256(model_bytes).hexdigest()
    metadata = {
        "name": directory.name,
        "version": digest[:12],
        "sha256": digest,
        "framework": "scikit-learn",
        "framework_version": sklearn.__version__,
        "converter": f"skl2onnx {skl2onnx.__version__}",
        **graph_signature(onnx.load_from_string(model_bytes)),
        "labels": labels,
        **description,
    }
    directory.mkdir(parents=True, exist_ok=True)
    write_atomically(directory / "label.json", json_bytes(labels))
    write_atomically(directory / "metadata.json", json_bytes(metadata))
    write_atomically(directory / "model.onnx", model_bytes)
    return metadata


def json_bytes(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, indent=2) + "\n").encode()


def write_atomically(path: Path, content: bytes) -> None:
    # A reader (a server, a copying `make models`) never sees a half-written file.
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(content)
    os.replace(temporary, path)
