"""`python -m src.classify IMAGE --model-dir models`: the top-3 labels of one image file under
every model directory there, with onnxruntime and the serving preprocessing (`make request`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnxruntime

from src.image_input import ImageInputError, Preprocessing, preprocess
from src.ml.artifacts import read_metadata

TOP = 3


def top_labels(model_dir: Path, image: bytes) -> list[tuple[str, float]]:
    metadata = read_metadata(model_dir)
    tensor = preprocess(image, Preprocessing.from_metadata(metadata["preprocessing"]))
    session = onnxruntime.InferenceSession(
        str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    probabilities = np.asarray(session.run(["probabilities"], {"input": tensor[np.newaxis]})[0][0])
    best = np.argsort(-probabilities, kind="stable")[:TOP]
    return [(metadata["labels"][str(index)], float(probabilities[index])) for index in best]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.classify", description=__doc__)
    parser.add_argument("image", type=Path)
    parser.add_argument("--model-dir", type=Path, default=Path("models"))
    args = parser.parse_args(argv)
    directories = sorted(path.parent for path in args.model_dir.glob("*/metadata.json"))
    if not directories:
        print(f"error: no model directory in {args.model_dir}: run make models", file=sys.stderr)
        return 1
    image = args.image.read_bytes()
    print(f"{args.image}: top-{TOP} labels per model")
    for directory in directories:
        try:
            ranked = top_labels(directory, image)
        except ImageInputError as error:
            print(f"error: {args.image}: {error}", file=sys.stderr)
            return 1
        shown = "  ".join(f"{label} {probability:.3f}" for label, probability in ranked)
        print(f"  {directory.name:<26} {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
