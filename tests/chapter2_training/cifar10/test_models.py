"""cifar10: SPEC 1.2 acceptance tests 3-6 on the model directories `make models` wrote.

Oracle: onnxruntime on the reference preprocessing of held-out digits rendered by the test
(checks.held_out_digits), never the trainer's own evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.chapter2_training.cifar10 import checks

OWN_DOMAIN_MINIMUM = {
    "digits_resnet": 0.95,
    "digits_resnet_large": 0.95,
    "digits_resnet_blackboard": 0.95,
    "digits_resnet_small": 0.93,
}
CATALOGUE = (*OWN_DOMAIN_MINIMUM, "digits_resnet_int8")


def domain_of(name: str) -> str:
    return "blackboard" if name.endswith("_blackboard") else "paper"


@pytest.fixture(scope="module")
def held_out() -> dict[str, list[tuple[Image.Image, int]]]:
    """All 450 test-split digits per domain at 32x32: the images the trainer evaluates on."""
    return {domain: checks.held_out_digits(domain, 32) for domain in ("paper", "blackboard")}


@pytest.fixture(scope="module")
def accuracies(held_out: dict[str, list[tuple[Image.Image, int]]]) -> dict[str, float]:
    return {
        name: checks.accuracy(checks.catalogue_model(name), held_out[domain_of(name)])
        for name in CATALOGUE
    }


@pytest.mark.parametrize("name", CATALOGUE)
def test_model_directory_is_complete(name: str) -> None:
    metadata = checks.assert_model_directory(checks.catalogue_model(name))
    assert metadata["labels"] == checks.DIGIT_LABELS
    assert metadata["metrics"]["total_tested"] == 450


@pytest.mark.parametrize("name", list(OWN_DOMAIN_MINIMUM))
def test_accuracy_on_its_own_domain(name: str, accuracies: dict[str, float]) -> None:
    assert accuracies[name] >= OWN_DOMAIN_MINIMUM[name]


@pytest.mark.parametrize("name", CATALOGUE)
def test_metadata_accuracy_equals_the_recomputed_one(
    name: str, accuracies: dict[str, float]
) -> None:
    metadata = checks.read_json(checks.catalogue_model(name) / "metadata.json")
    assert metadata["metrics"]["accuracy"] == pytest.approx(accuracies[name], abs=0.001)


def test_int8_is_close_to_fp32_and_small(accuracies: dict[str, float]) -> None:
    assert abs(accuracies["digits_resnet_int8"] - accuracies["digits_resnet"]) <= 0.02
    fp32 = (checks.catalogue_model("digits_resnet") / "model.onnx").stat().st_size
    int8 = (checks.catalogue_model("digits_resnet_int8") / "model.onnx").stat().st_size
    assert int8 <= 0.4 * fp32
    metadata = checks.read_json(checks.catalogue_model("digits_resnet_int8") / "metadata.json")
    source = checks.read_json(checks.catalogue_model("digits_resnet") / "metadata.json")
    assert metadata["preprocessing"] == source["preprocessing"]
    assert metadata["quantization"]["source"]["version"] == source["version"]
    assert metadata["quantization"]["calibration_images"] <= 512


def test_int8_graph_is_quantized() -> None:
    import onnx

    graph = onnx.load(checks.catalogue_model("digits_resnet_int8") / "model.onnx")
    operators = {node.op_type for node in graph.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= operators


def test_the_specialist_beats_the_general_model_on_blackboards(
    held_out: dict[str, list[tuple[Image.Image, int]]], accuracies: dict[str, float]
) -> None:
    general = checks.accuracy(checks.catalogue_model("digits_resnet"), held_out["blackboard"])
    assert accuracies["digits_resnet_blackboard"] > general
    metadata = checks.read_json(checks.catalogue_model("digits_resnet") / "metadata.json")
    assert metadata["metrics"]["cross_domain_accuracy"]["blackboard"] == pytest.approx(
        general, abs=0.001
    )


@pytest.mark.parametrize(("image_format", "minimum"), [("PNG", 0.95), ("JPEG", 0.93)])
def test_digits_resnet_classifies_64px_files_as_the_serving_patterns_send_them(
    image_format: str, minimum: float
) -> None:
    """I-oracle 1 thresholds, on the 64x64 files the serving patterns' tests use."""
    images = checks.held_out_digits("paper", 64)[:250]
    assert checks.accuracy(checks.catalogue_model("digits_resnet"), images, image_format) >= minimum


def run_json(metadata: dict[str, Any]) -> dict[str, Any]:
    path: Path = checks.RUNS_DIR / metadata["training"]["run_id"] / "run.json"
    if not path.is_file():
        pytest.fail(f"{path} is missing: run make models in chapter2_training/cifar10")
    document: dict[str, Any] = checks.read_json(path)
    return document


@pytest.mark.parametrize("name", list(OWN_DOMAIN_MINIMUM))
def test_metadata_normalisation_is_what_training_used(name: str) -> None:
    metadata = checks.read_json(checks.catalogue_model(name) / "metadata.json")
    steps = run_json(metadata)["steps"]
    used = steps["train"]["outputs"]["normalisation"]
    assert metadata["preprocessing"]["mean"] == used["mean"]
    assert metadata["preprocessing"]["std"] == used["std"]
    assert steps["train"]["outputs"]["preprocessing"] == metadata["preprocessing"]
    assert steps["train"]["outputs"]["version"] == metadata["version"]
