"""`make demo`'s tour of cifar10 (pattern.toml `demo_script`): the trained models' table, then
one held-out digit classified by each of them with onnxruntime (what `make request` prints).
Run from the pattern directory with PYTHONPATH=. (the launcher's environment); trains nothing."""

from __future__ import annotations

import sys
from pathlib import Path

from src import classify, report, samples

MODELS = (
    "digits_resnet",
    "digits_resnet_small",
    "digits_resnet_large",
    "digits_resnet_blackboard",
    "digits_resnet_int8",
)


def main() -> int:
    models = Path("models")
    if not all((models / name / "model.onnx").is_file() for name in MODELS):
        print("error: models are missing: run make models in chapter2_training/cifar10")
        return 1
    report.main(["--model-dir", str(models), *MODELS])
    sample = Path("data") / samples.SAMPLE_FILE
    if not sample.is_file():
        samples.main(["--count", "10", "--out", str(sample.parent)])
    return classify.main([str(sample), "--model-dir", str(models)])


if __name__ == "__main__":
    sys.exit(main())
