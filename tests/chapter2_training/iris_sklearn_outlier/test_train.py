"""iris_sklearn_outlier: SPEC 1.1 acceptance tests 1, 3, 4 and 5 for `iris_ocs`, trained once
into a temp dir.

Oracle: the detector of the SPEC table, fitted here on all 150 rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM

from tests.chapter2_training import iris_checks as checks

PATTERN = "chapter2_training/iris_sklearn_outlier"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output_dir = tmp_path_factory.mktemp("models")
    checks.train(PATTERN, output_dir)
    return output_dir


@pytest.fixture(scope="module")
def model_dir(models: Path) -> Path:
    return models / "iris_ocs"


@pytest.fixture(scope="module")
def metadata(model_dir: Path) -> dict[str, Any]:
    return checks.assert_model_directory(model_dir, "outlier_detection")


@pytest.fixture(scope="module")
def oracle() -> Pipeline:
    features, _ = checks.iris_float32()
    return make_pipeline(StandardScaler(), OneClassSVM(nu=0.1, gamma="auto")).fit(features)


def test_onnx_equals_the_fitted_detector_on_all_rows(model_dir: Path, oracle: Pipeline) -> None:
    features, _ = checks.iris_float32()
    outputs = checks.run_onnx(model_dir, features)
    assert outputs["label"].dtype == np.int64 and outputs["label"].shape == (150,)
    np.testing.assert_array_equal(outputs["label"], oracle.predict(features))
    assert outputs["scores"].dtype == np.float32 and outputs["scores"].shape == (150,)
    np.testing.assert_allclose(
        outputs["scores"], oracle.decision_function(features), rtol=0, atol=1e-5
    )


def test_label_semantics(model_dir: Path, metadata: dict[str, Any]) -> None:
    assert metadata["labels"] == {"-1": "outlier", "1": "inlier"}
    assert checks.run_onnx(model_dir, [[1, 2, 3, 4]])["label"].tolist() == [-1]
    assert checks.run_onnx(model_dir, metadata["data_sample"])["label"].tolist() == [1]


def test_outlier_fraction_of_the_training_rows(model_dir: Path, metadata: dict[str, Any]) -> None:
    features, _ = checks.iris_float32()
    fraction = float(np.mean(checks.run_onnx(model_dir, features)["label"] == -1))
    assert 0.05 <= fraction <= 0.15
    assert metadata["metrics"]["outlier_fraction_train"] == pytest.approx(fraction)
    assert metadata["metrics"]["threshold"] == 0.0
    assert metadata["training"]["split"]["train"] == 150


def test_same_seed_gives_the_same_bytes(models: Path, tmp_path: Path) -> None:
    checks.train(PATTERN, tmp_path)
    assert checks.sha256(tmp_path / "iris_ocs" / "model.onnx") == checks.sha256(
        models / "iris_ocs" / "model.onnx"
    )
