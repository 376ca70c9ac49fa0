"""`python -m src.quantize --model-dir models/digits_resnet`: static int8 quantization (QDQ) of a
trained model, calibrated on at most 512 of its training images, evaluated like any model and
published as `<name>_int8` with the same preprocessing (SPEC 1.2 behaviour 7)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_static,
)

from src import cli, evaluate, preprocess
from src.image_input import Preprocessing
from src.ml import artifacts
from src.ml.data import DatasetUnavailable
from src.ml.transform import load_tensors
from src.runs import Json, Run, RunError, new_run_id

STEP = "quantize"
MAX_CALIBRATION_IMAGES = 512
CALIBRATION_BATCH = 64


class TensorReader(CalibrationDataReader):  # type: ignore[misc]
    """Feeds the calibration tensors to onnxruntime's calibrator, one batch at a time."""

    def __init__(self, images: NDArray[np.float32]) -> None:
        self.batches = iter(
            [
                images[start : start + CALIBRATION_BATCH]
                for start in range(0, len(images), CALIBRATION_BATCH)
            ]
        )

    def get_next(self) -> dict[str, NDArray[np.float32]] | None:
        batch = next(self.batches, None)
        return None if batch is None else {artifacts.INPUT_NAME: batch}


def calibration_images(run: Run, prep: Preprocessing, count: int, seed: int) -> NDArray[np.float32]:
    """A seeded sample of the run's training images, through the training transform."""
    train_dir = Path(run.step("preprocess")["outputs"]["directory"]) / "train"
    images = load_tensors(train_dir, prep).images.numpy()
    chosen = np.random.default_rng(seed).permutation(len(images))[: min(count, len(images))]
    return np.ascontiguousarray(images[np.sort(chosen)])


def quantized_bytes(source: Path, work_dir: Path, images: NDArray[np.float32]) -> bytes:
    """Shape inference and graph optimisation first (onnxruntime's recommended pre-step), then
    int8 weights (per channel) and uint8 activations as QuantizeLinear/DequantizeLinear pairs."""
    work_dir.mkdir(parents=True, exist_ok=True)
    prepared, quantized = work_dir / "prepared.onnx", work_dir / "quantized.onnx"
    quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
    quantize_static(
        str(prepared),
        str(quantized),
        TensorReader(images),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
    )
    return artifacts.canonical_bytes(onnx.load(str(quantized)))


def calibration_run(source_meta: Json, runs_dir: Path, run_id: str | None, command: str) -> Run:
    """The run whose training images calibrate: --run-id, else the run that trained the source
    model if it is still on disk, else a new run that preprocesses the same data again."""
    training = source_meta["training"]
    if run_id is not None:
        return Run(runs_dir, run_id)
    trained = Run(runs_dir, training["run_id"])
    if (trained.directory / "run.json").is_file():
        return trained
    run = Run(runs_dir, new_run_id(f"{source_meta['name']}_int8"))
    run.start(command, f"{source_meta['name']}_int8")
    data = training["data"]
    preprocess.preprocess(
        run,
        dataset_name=data["dataset"],
        domain=data["domain"],
        seed=data["seed"],
        data_dir=Path("data"),
        download=False,
    )
    return run


def quantize(
    run: Run, source: Path, output_dir: Path, *, count: int, seed: int, command: str
) -> Json:
    source_meta = artifacts.read_metadata(source)
    prep = Preprocessing.from_metadata(source_meta["preprocessing"])
    name = f"{source_meta['name']}_int8"
    parameters: Json = {
        "format": "QDQ",
        "weights": "int8 per channel",
        "activations": "uint8",
        "calibration": "MinMax",
        "calibration_images": count,
        "seed": seed,
    }
    with run.record(STEP, parameters, {"model_dir": str(source)}) as outputs:
        images = calibration_images(run, prep, count, seed)
        parameters["calibration_images"] = len(images)
        model_bytes = quantized_bytes(source / "model.onnx", run.step_dir(STEP) / "work", images)
        staged = run.step_dir(STEP) / name
        description: dict[str, Any] = {
            key: source_meta[key] for key in ("preprocessing", "training") if key in source_meta
        }
        description["quantization"] = {
            **parameters,
            "source": {"name": source_meta["name"], "version": source_meta["version"]},
            "command": command,
        }
        metadata = artifacts.model_metadata(name, model_bytes, source_meta["labels"], description)
        metadata["converter"] = "onnxruntime.quantization.quantize_static"
        artifacts.write_model_dir(staged, model_bytes, {**metadata, "metrics": {}})
        classify = evaluate.onnxruntime_classifier(staged / "model.onnx")
        metrics = evaluate.evaluate_model(run, staged, classify, run.step_dir(STEP))
        published = artifacts.publish(staged, output_dir)
        outputs.update(
            {
                "model_dir": str(published),
                "model_name": name,
                "version": metadata["version"],
                "accuracy": metrics["accuracy"],
                "size_bytes": len(model_bytes),
                "source_size_bytes": (source / "model.onnx").stat().st_size,
            }
        )
    print(evaluate.describe(name, metrics, published), flush=True)
    return run.step(STEP)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m src.quantize", description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=Path("models/digits_resnet"))
    cli.add_output_argument(parser)
    parser.add_argument("--calibration-count", type=cli.positive, default=MAX_CALIBRATION_IMAGES)
    parser.add_argument("--seed", type=int, default=42)
    cli.add_run_arguments(parser)
    args = parser.parse_args(argv)
    if args.calibration_count > MAX_CALIBRATION_IMAGES:
        parser.error(f"--calibration-count: at most {MAX_CALIBRATION_IMAGES} (SPEC 1.2)")
    return args


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    args = parse_args(arguments)
    command = shlex.join(["python", "-m", "src.quantize", *arguments])
    if not (args.model_dir / "model.onnx").is_file():
        return cli.fail(f"no model in {args.model_dir}: train it first (make digits_resnet)")
    try:
        source_meta = artifacts.read_metadata(args.model_dir)
        run = calibration_run(source_meta, args.runs_dir, args.run_id, command)
        quantize(
            run,
            args.model_dir,
            args.output_dir,
            count=args.calibration_count,
            seed=args.seed,
            command=command,
        )
    except (RunError, DatasetUnavailable) as error:
        return cli.fail(str(error))
    return 0


if __name__ == "__main__":
    sys.exit(main())
