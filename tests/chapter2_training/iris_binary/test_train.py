"""iris_binary: SPEC 1.1 acceptance tests 1, 2, 3 and 5 for the three one-against-rest models,
trained once into a temp dir.

Oracle: for each species, the estimator of the SPEC table fitted here on the split SPEC 1.1
describes, with that species as class 0 and every other row as class 1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import accuracy_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from tests.chapter2_training import iris_checks as checks

PATTERN = "chapter2_training/iris_binary"
SPECIES = ["setosa", "versicolor", "virginica"]  # iris target order
by_species = pytest.mark.parametrize("species", SPECIES)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output_dir = tmp_path_factory.mktemp("models")
    checks.train(PATTERN, output_dir)
    return output_dir


def metadata_of(models: Path, species: str) -> dict[str, Any]:
    return checks.assert_model_directory(
        models / f"iris_binary_{species}", "tabular_classification"
    )


def oracle(species: str) -> Pipeline:
    x_train, _, y_train, _ = checks.stratified_split()
    svc = SVC(probability=True, random_state=42)
    binary = (y_train != SPECIES.index(species)).astype(np.int64)
    return make_pipeline(StandardScaler(), svc).fit(x_train, binary)


def test_train_writes_one_directory_per_species(models: Path) -> None:
    assert sorted(path.name for path in models.iterdir()) == [f"iris_binary_{s}" for s in SPECIES]


@by_species
def test_onnx_equals_the_fitted_estimator_on_all_rows(models: Path, species: str) -> None:
    features, _ = checks.iris_float32()
    expected = oracle(species)
    outputs = checks.run_onnx(models / f"iris_binary_{species}", features)
    np.testing.assert_array_equal(outputs["label"], expected.predict(features))
    assert outputs["probabilities"].shape == (150, 2)
    np.testing.assert_allclose(
        outputs["probabilities"], expected.predict_proba(features), rtol=0, atol=1e-5
    )


@by_species
def test_accuracy_on_the_test_split(models: Path, species: str) -> None:
    _, x_test, _, y_test = checks.stratified_split()
    binary = (y_test != SPECIES.index(species)).astype(np.int64)
    predicted = checks.run_onnx(models / f"iris_binary_{species}", x_test)["label"]
    accuracy = accuracy_score(binary, predicted)
    assert accuracy >= 0.90
    assert metadata_of(models, species)["metrics"]["accuracy"] == pytest.approx(accuracy)


@by_species
def test_label_semantics(models: Path, species: str) -> None:
    metadata = metadata_of(models, species)
    assert metadata["labels"] == {"0": species, "1": "other"}
    features, target = checks.iris_float32()
    labels = checks.run_onnx(models / f"iris_binary_{species}", features)["label"]
    assert np.mean(labels[target == SPECIES.index(species)] == 0) >= 0.90
    assert np.mean(labels[target != SPECIES.index(species)] == 1) >= 0.90


def test_target_trains_one_model_with_the_same_bytes(models: Path, tmp_path: Path) -> None:
    checks.train(PATTERN, tmp_path, "--target", "versicolor")
    assert [path.name for path in tmp_path.iterdir()] == ["iris_binary_versicolor"]
    assert checks.sha256(tmp_path / "iris_binary_versicolor" / "model.onnx") == checks.sha256(
        models / "iris_binary_versicolor" / "model.onnx"
    )
