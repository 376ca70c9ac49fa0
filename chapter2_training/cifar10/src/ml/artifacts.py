"""ONNX export and the image model directory of SPEC 0.2: model.onnx, label.json, metadata.json."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import onnx
import torch
from onnx import TensorProto

from src.ml.network import Classifier

OPSET = 18  # ≥ 17 (SPEC 1.2 behaviour 4); the lowest the dynamo exporter writes without a
# version conversion step
INPUT_NAME = "input"
OUTPUT_NAME = "probabilities"
ARTIFACTS = ("model.onnx", "label.json", "metadata.json")
V2_DATATYPES: dict[int, str] = {
    TensorProto.FLOAT: "FP32",
    TensorProto.INT64: "INT64",
    TensorProto.INT8: "INT8",
    TensorProto.UINT8: "UINT8",
}


def export_onnx(network: torch.nn.Module, image_shape: tuple[int, int, int]) -> bytes:
    """The network in evaluation mode with the softmax appended: input `input` FP32
    [N, 3, H, W] with a dynamic batch axis, output `probabilities` FP32 [N, C], one file
    (no external data), checked; the same weights always give the same bytes."""
    classifier = Classifier(network).eval()
    example = torch.zeros((2, *image_shape), dtype=torch.float32)
    batch = torch.export.Dim("batch", min=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's own deprecation notes: not ours to fix
        program = torch.onnx.export(
            classifier,
            (example,),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            opset_version=OPSET,
            dynamo=True,
            external_data=False,
            dynamic_shapes={"x": {0: batch}},
            optimize=True,
            verbose=False,
        )
    if program is None:
        raise RuntimeError("torch.onnx.export returned no program")
    return canonical_bytes(program.model_proto)


def canonical_bytes(model: onnx.ModelProto) -> bytes:
    # Names of the producer's versions and doc strings say nothing about the graph; cleared,
    # the bytes depend only on the weights and the graph (same seed → same sha256).
    model.doc_string = ""
    model.graph.doc_string = ""
    del model.metadata_props[:]
    onnx.checker.check_model(model, full_check=True)
    serialized: bytes = model.SerializeToString(deterministic=True)
    return serialized


def load_model(model_bytes: bytes) -> onnx.ModelProto:
    return onnx.load_model_from_string(model_bytes)


def graph_signature(model: onnx.ModelProto) -> dict[str, Any]:
    """opset, inputs and outputs as metadata states them (V2 datatypes, -1 for a dynamic axis)."""
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


def model_metadata(
    name: str, model_bytes: bytes, labels: dict[str, str], description: dict[str, Any]
) -> dict[str, Any]:
    digest = hashlib.sha256(model_bytes).hexdigest()
    return {
        "name": name,
        "version": digest[:12],
        "sha256": digest,
        "framework": "pytorch",
        "framework_version": torch.__version__.split("+")[0],
        "converter": f"torch.onnx (dynamo) {torch.__version__.split('+')[0]}",
        **graph_signature(load_model(model_bytes)),
        "labels": labels,
        "task": "image_classification",
        **description,
    }


def write_model_dir(directory: Path, model_bytes: bytes, metadata: dict[str, Any]) -> None:
    """model.onnx goes last: its date is what `make models` compares, so a directory
    interrupted half-way is rebuilt."""
    directory.mkdir(parents=True, exist_ok=True)
    write_atomically(directory / "label.json", json_bytes(metadata["labels"]))
    write_atomically(directory / "metadata.json", json_bytes(metadata))
    write_atomically(directory / "model.onnx", model_bytes)


def read_metadata(directory: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((directory / "metadata.json").read_text())
    return document


def update_metadata(directory: Path, changes: dict[str, Any]) -> dict[str, Any]:
    metadata = {**read_metadata(directory), **changes}
    write_atomically(directory / "metadata.json", json_bytes(metadata))
    return metadata


def publish(staged: Path, output_dir: Path) -> Path:
    """Copy a finished model directory from its run into the output directory (model.onnx
    last, each file atomically): servers and `make models` never see half a model."""
    target = output_dir / staged.name
    target.mkdir(parents=True, exist_ok=True)
    for name in ("label.json", "metadata.json", "model.onnx"):
        temporary = target / f".{name}.tmp"
        shutil.copyfile(staged / name, temporary)
        os.replace(temporary, target / name)
    return target


def json_bytes(document: Any) -> bytes:
    return (json.dumps(document, indent=2) + "\n").encode()


def write_atomically(path: Path, content: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(content)
    os.replace(temporary, path)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
