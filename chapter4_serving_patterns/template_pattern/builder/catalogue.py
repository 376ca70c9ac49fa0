"""The tabular classifiers of the model catalogue (SPEC 0.2) a generated pattern can serve."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CatalogueModel:
    trainer: str  # the chapter2_training directory whose `make models` writes it
    feature_count: int
    classes: int


IRIS_FEATURES = 4
CATALOGUE: dict[str, CatalogueModel] = {
    "iris_svc": CatalogueModel("iris_sklearn_svc", IRIS_FEATURES, 3),
    "iris_rf": CatalogueModel("iris_sklearn_rf", IRIS_FEATURES, 3),
    **{
        f"iris_binary_{species}": CatalogueModel("iris_binary", IRIS_FEATURES, 2)
        for species in ("setosa", "versicolor", "virginica")
    },
}
