"""The `iris_svc` estimator (SPEC 1.1 table) and its test-split metrics (behaviour 2)."""

from __future__ import annotations

from typing import Any

from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from src.ml.data import Split

MODEL_NAME = "iris_svc"
MODEL_NAMES = (MODEL_NAME,)  # every model directory this trainer writes


def build(seed: int) -> Pipeline:
    return Pipeline(
        [
            ("scaler", StandardScaler()),
            ("classifier", SVC(probability=True, random_state=seed)),
        ]
    )


def parameters(pipeline: Pipeline) -> dict[str, Any]:
    """What the metadata and the registry record about the fitted estimator."""
    classifier = pipeline.named_steps["classifier"]
    return {"steps": [type(step).__name__ for _, step in pipeline.steps], **classifier.get_params()}


def evaluate(pipeline: Pipeline, data: Split) -> dict[str, Any]:
    predicted = pipeline.predict(data.x_test)
    precision, recall, f1, _ = precision_recall_fscore_support(
        data.y_test, predicted, average="macro", zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(data.y_test, predicted)),
        "precision_macro": float(precision),
        "recall_macro": float(recall),
        "f1_macro": float(f1),
        "confusion_matrix": confusion_matrix(data.y_test, predicted).tolist(),
    }
