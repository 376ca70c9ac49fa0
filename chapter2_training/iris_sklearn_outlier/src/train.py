"""`python -m src.train`: fit `iris_ocs` on all 150 iris rows, export it to ONNX, write
models/iris_ocs/, and register it in the model DB when MODEL_DB_URL is set (SPEC 1.1)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from src import register
from src.configurations import Settings
from src.ml import artifacts, data, model

LABELS = {"-1": "outlier", "1": "inlier"}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m src.train", description=__doc__)
    parser.add_argument("--output-dir", type=Path, default=Path("models"))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--test-size",
        type=test_fraction,
        default=0.3,
        help="accepted like every iris trainer's; unused: the detector learns all 150 rows",
    )
    parser.add_argument(
        "--alias", type=register.alias_name, help="registry alias set to the registered version"
    )
    return parser.parse_args(argv)


def test_fraction(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a fraction between 0 and 1")
    return value


def train(args: argparse.Namespace, command: str) -> Path:
    iris = data.load()
    # Every row is an inlier of the data set the detector describes: no held-out split
    # (SPEC 1.1); the one-class SVM has no randomness, the seed is only recorded.
    pipeline = model.build().fit(iris.features)
    model_bytes = artifacts.to_onnx(pipeline, model.MODEL_NAME, len(iris.feature_names))
    directory: Path = args.output_dir / model.MODEL_NAME
    metadata = artifacts.write_model_dir(
        directory,
        model_bytes,
        LABELS,
        {
            "task": "outlier_detection",
            "data_sample": [data.SAMPLE_ROW],
            "feature_names": iris.feature_names,
            "training": {
                "dataset": data.DATASET,
                "split": {"train": len(iris.features), "test": 0},
                "seed": args.seed,
                "parameters": model.parameters(pipeline),
                "command": command,
            },
            "metrics": model.evaluate(pipeline, iris.features),
        },
    )
    report(metadata, model_bytes)
    return directory


def report(metadata: dict[str, Any], model_bytes: bytes) -> None:
    labels, scores = artifacts.run(model_bytes, metadata["data_sample"])
    print(
        f"{metadata['name']}  version {metadata['version']}  "
        f"outlier fraction (train) {metadata['metrics']['outlier_fraction_train']:.3f}  "
        f"sample {metadata['data_sample'][0]} -> {LABELS[str(labels[0])]} "
        f"(score {scores[0]:.3f})",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    args = parse_args(arguments)
    settings = Settings()
    directory = train(args, shlex.join(["python", "-m", "src.train", *arguments]))
    if settings.model_db_url is None:
        if args.alias:
            print(f"--alias {args.alias} ignored: MODEL_DB_URL is not set", flush=True)
        return 0
    return register.register_or_fail(
        [directory], settings.model_db_url, settings.model_db_timeout_s, args.alias
    )


if __name__ == "__main__":
    sys.exit(main())
