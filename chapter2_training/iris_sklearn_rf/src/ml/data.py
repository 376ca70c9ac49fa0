"""scikit-learn's bundled iris data as every iris model sees it (SPEC 1.1 behaviour 1)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

# The book's sample request: the first iris row, a setosa.
SAMPLE_ROW = [5.1, 3.5, 1.4, 0.2]
DATASET = "iris (scikit-learn bundled copy of the UCI data set: 150 rows, 4 features, 3 classes)"


@dataclass(frozen=True)
class Iris:
    features: NDArray[np.float32]
    target: NDArray[np.int64]
    feature_names: list[str]
    target_names: list[str]


@dataclass(frozen=True)
class Split:
    x_train: NDArray[np.float32]
    x_test: NDArray[np.float32]
    y_train: NDArray[np.int64]
    y_test: NDArray[np.int64]


def load() -> Iris:
    bunch = load_iris()
    return Iris(
        # float32 before fitting: the ONNX graph takes float32, so both see the same values.
        features=np.asarray(bunch.data, dtype=np.float32),
        target=np.asarray(bunch.target, dtype=np.int64),
        feature_names=[str(name) for name in bunch.feature_names],
        target_names=[str(name) for name in bunch.target_names],
    )


def split(iris: Iris, test_size: float, seed: int) -> Split:
    x_train, x_test, y_train, y_test = train_test_split(
        iris.features, iris.target, test_size=test_size, random_state=seed, stratify=iris.target
    )
    return Split(x_train, x_test, y_train, y_test)
