"""`python -m src.train`: fit one-against-rest `iris_binary_<species>` classifiers, export them to
ONNX, write models/iris_binary_<species>/, and register them in the model DB when MODEL_DB_URL
is set (SPEC 1.1)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from src import register
from src.configurations import Settings
from src.ml import artifacts, data, model


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m src.train", description=__doc__)
    parser.add_argument("--output-dir", type=Path, default=Path("models"))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--test-size", type=test_fraction, default=0.3)
    parser.add_argument("--target", choices=[*model.SPECIES, "all"], default="all")
    parser.add_argument(
        "--alias", type=register.alias_name, help="registry alias set to the registered versions"
    )
    return parser.parse_args(argv)


def test_fraction(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a fraction between 0 and 1")
    return value


def train(args: argparse.Namespace, command: str) -> list[Path]:
    iris = data.load()
    # One split on the three species, shared by every binary model: stratified on the species,
    # it is stratified on each one-against-rest target too.
    split = data.split(iris, args.test_size, args.seed)
    targets = model.SPECIES if args.target == "all" else (args.target,)
    return [train_one(args, command, iris, split, species) for species in targets]


def train_one(
    args: argparse.Namespace, command: str, iris: data.Iris, split: data.Split, species: str
) -> Path:
    binary = data.one_against_rest(split, iris.target_names.index(species))
    pipeline = model.build(args.seed).fit(binary.x_train, binary.y_train)
    name = f"iris_binary_{species}"
    model_bytes = artifacts.to_onnx(pipeline, name, len(iris.feature_names))
    directory: Path = args.output_dir / name
    metadata = artifacts.write_model_dir(
        directory,
        model_bytes,
        {"0": species, "1": "other"},
        {
            "task": "tabular_classification",
            "data_sample": [data.SAMPLE_ROW],
            "feature_names": iris.feature_names,
            "training": {
                "dataset": data.DATASET,
                "target": f"{species} (class 0) against the other species (class 1)",
                "split": {
                    "train": len(binary.y_train),
                    "test": len(binary.y_test),
                    "test_size": args.test_size,
                    "stratified": True,
                },
                "seed": args.seed,
                "parameters": model.parameters(pipeline),
                "command": command,
            },
            "metrics": model.evaluate(pipeline, binary),
        },
    )
    report(metadata, model_bytes)
    return directory


def report(metadata: dict[str, Any], model_bytes: bytes) -> None:
    labels, probabilities = artifacts.run(model_bytes, metadata["data_sample"])
    print(
        f"{metadata['name']}  version {metadata['version']}  "
        f"test accuracy {metadata['metrics']['accuracy']:.3f}  "
        f"sample {metadata['data_sample'][0]} -> {metadata['labels'][str(labels[0])]} "
        f"({probabilities[0].max():.3f})",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    args = parse_args(arguments)
    settings = Settings()
    directories = train(args, shlex.join(["python", "-m", "src.train", *arguments]))
    if settings.model_db_url is None:
        if args.alias:
            print(f"--alias {args.alias} ignored: MODEL_DB_URL is not set", flush=True)
        return 0
    return register.register_or_fail(
        directories, settings.model_db_url, settings.model_db_timeout_s, args.alias
    )


if __name__ == "__main__":
    sys.exit(main())
