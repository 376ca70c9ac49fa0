"""Write data/items.json: the sample rows `make seed` loads (SPEC 3.4 behaviour 1).

Iris measurements (scikit-learn's bundled copy) cycled to the requested count, each with
Gaussian jitter of 5 % of its feature's standard deviation from a seeded generator, rounded to
two decimals and kept positive. Every row gets a unique `source_key`, which makes the seed
idempotent. Runs in the dev environment at `make models`; no serving process imports this.

    python scripts/make_items.py --output data/items.json --rows 1000 --seed 42
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.datasets import load_iris

JITTER = 0.05  # of each feature's standard deviation
MIN_VALUE = 0.1  # centimetres: a measurement stays positive


def make_items(rows: int, seed: int) -> list[dict[str, object]]:
    iris = load_iris()
    features = np.asarray(iris.data, dtype=np.float64)
    rng = np.random.default_rng(seed)
    picked = np.arange(rows) % len(features)
    noise = rng.normal(0.0, JITTER, size=(rows, features.shape[1])) * features.std(axis=0)
    values = np.clip(np.round(features[picked] + noise, 2), MIN_VALUE, None)
    species = [str(iris.target_names[iris.target[index]]) for index in picked]
    return [
        {"source_key": f"iris-{seed}-{number:05d}", "values": row, "species": name}
        for number, (row, name) in enumerate(zip(values.tolist(), species, strict=True))
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=42)
    arguments = parser.parse_args()
    header = {
        "description": "iris rows with seeded jitter for the batch pattern's seed job",
        "generator": "scripts/make_items.py",
        "seed": arguments.seed,
    }
    items = ",\n  ".join(json.dumps(item) for item in make_items(arguments.rows, arguments.seed))
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    temporary = arguments.output.with_suffix(".tmp")
    # one item per line: readable, and a diff of two seeds shows which rows differ
    temporary.write_text(json.dumps(header)[:-1] + f', "items": [\n  {items}\n]}}\n')
    temporary.replace(arguments.output)  # never a half-written file for `seed` to read
    print(f"wrote {arguments.rows} rows to {arguments.output}")


if __name__ == "__main__":
    main()
