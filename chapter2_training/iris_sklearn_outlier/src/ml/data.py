"""scikit-learn's bundled iris data as every iris model sees it (SPEC 1.1 behaviour 1)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sklearn.datasets import load_iris

# The book's sample request: the first iris row, a setosa (an inlier).
SAMPLE_ROW = [5.1, 3.5, 1.4, 0.2]
DATASET = "iris (scikit-learn bundled copy of the UCI data set: 150 rows, 4 features, 3 classes)"


@dataclass(frozen=True)
class Iris:
    features: NDArray[np.float32]
    feature_names: list[str]


def load() -> Iris:
    bunch = load_iris()
    return Iris(
        # float32 before fitting: the ONNX graph takes float32, so both see the same values.
        features=np.asarray(bunch.data, dtype=np.float32),
        feature_names=[str(name) for name in bunch.feature_names],
    )
