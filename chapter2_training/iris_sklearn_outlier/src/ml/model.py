"""The `iris_ocs` outlier detector (SPEC 1.1 table) and its training figures (behaviour 2)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM

MODEL_NAME = "iris_ocs"
MODEL_NAMES = (MODEL_NAME,)  # every model directory this trainer writes
THRESHOLD = 0.0  # decision_function below it: an outlier (-1)


def build() -> Pipeline:
    # nu bounds the share of training rows left outside the boundary: about 10 %.
    return Pipeline(
        [
            ("scaler", StandardScaler()),
            ("detector", OneClassSVM(nu=0.1, gamma="auto")),
        ]
    )


def parameters(pipeline: Pipeline) -> dict[str, Any]:
    """What the metadata and the registry record about the fitted estimator."""
    detector = pipeline.named_steps["detector"]
    return {"steps": [type(step).__name__ for _, step in pipeline.steps], **detector.get_params()}


def evaluate(pipeline: Pipeline, features: NDArray[np.float32]) -> dict[str, Any]:
    predicted = pipeline.predict(features)
    return {
        "outlier_fraction_train": float(np.mean(predicted == -1)),
        "threshold": THRESHOLD,
    }
