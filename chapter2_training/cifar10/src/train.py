"""`python -m src.train --run-id ID`: train the ResNet on the run's preprocessed images, keep a
checkpoint per epoch and export the best one to ONNX as a model directory inside the run
(SPEC 1.2 behaviours 2-5). `src.evaluate` scores it and publishes it to the output directory."""

from __future__ import annotations

import argparse
import math
import random
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from src import cli
from src.configurations import Settings
from src.image_input import Preprocessing
from src.ml import artifacts, network
from src.ml.data import DIGITS_TEST_FRACTION
from src.ml.transform import LabelledTensors, augment, load_tensors, preprocessing
from src.runs import Json, Run, RunError

STEP = "train"
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4


@dataclass(frozen=True)
class TrainingConfig:
    variant: str
    epochs: int
    batch_size: int
    learning_rate: float
    seed: int

    def parameters(self) -> Json:
        shape = network.VARIANTS[self.variant]
        return {
            "variant": self.variant,
            "widths": list(shape.widths),
            "blocks_per_stage": shape.blocks,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "optimizer": f"SGD(momentum={MOMENTUM}, nesterov, weight_decay={WEIGHT_DECAY})",
            "schedule": "OneCycleLR",
            "augmentation": "shift ±2 px, rotation ±10° (affine, border padding)",
        }


@dataclass(frozen=True)
class EpochResult:
    epoch: int
    train_loss: float
    test_loss: float
    test_accuracy: float
    global_step: int
    seconds: float

    def line(self, name: str, epochs: int) -> str:
        return (
            f"{name}  epoch {self.epoch}/{epochs}  train loss {self.train_loss:.4f}  "
            f"test loss {self.test_loss:.4f}  test accuracy {self.test_accuracy:.4f}  "
            f"step {self.global_step}  ({self.seconds:.1f} s)"
        )


def make_deterministic(seed: int, threads: int) -> torch.Generator:
    """Same seed, same data, same threads → same weights → same model.onnx bytes."""
    random.seed(seed)
    np.random.seed(seed)  # libraries that draw from the global state
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    return torch.Generator().manual_seed(seed)


def train_one_epoch(
    model: nn.Module,
    data: LabelledTensors,
    *,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    batch_size: int,
    generator: torch.Generator,
) -> tuple[float, int]:
    """One pass in training mode (batch norm uses and updates batch statistics); returns the
    mean training loss and the number of optimisation steps."""
    model.train()
    order = torch.randperm(len(data.labels), generator=generator)
    total_loss, seen, steps = 0.0, 0, 0
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        if len(indices) < 2:  # batch norm cannot normalise a batch of one
            continue
        images = augment(data.images[indices], generator)
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(images), data.labels[indices])
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        scheduler.step()
        total_loss += float(loss.item()) * len(indices)
        seen += len(indices)
        steps += 1
    return total_loss / max(seen, 1), steps


def predict_logits(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Evaluation mode (batch norm uses its running statistics), no gradients."""
    model.eval()
    with torch.no_grad():
        return torch.cat(
            [
                model(images[start : start + batch_size])
                for start in range(0, len(images), batch_size)
            ]
        )


def test_figures(model: nn.Module, data: LabelledTensors) -> tuple[float, float]:
    """Test loss averaged over the real number of test samples, and test accuracy."""
    logits = predict_logits(model, data.images)
    loss = nn.functional.cross_entropy(logits, data.labels, reduction="sum").item() / len(
        data.labels
    )
    accuracy = float((logits.argmax(dim=1) == data.labels).float().mean().item())
    return float(loss), accuracy


def fit(
    model: nn.Module,
    train_data: LabelledTensors,
    test_data: LabelledTensors,
    *,
    config: TrainingConfig,
    generator: torch.Generator,
    checkpoint_dir: Path,
    name: str,
) -> tuple[int, list[EpochResult]]:
    """Train for config.epochs, keeping a checkpoint per epoch; returns the best epoch (highest
    test accuracy, the later one on a tie: it has seen the annealed learning rate)."""
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=config.learning_rate,
        momentum=MOMENTUM,
        nesterov=True,
        weight_decay=WEIGHT_DECAY,
    )
    steps_per_epoch = max(1, math.ceil(len(train_data.labels) / config.batch_size))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.learning_rate, total_steps=config.epochs * steps_per_epoch
    )
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    history: list[EpochResult] = []
    global_step = 0
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        train_loss, steps = train_one_epoch(
            model,
            train_data,
            optimizer=optimizer,
            scheduler=scheduler,
            batch_size=config.batch_size,
            generator=generator,
        )
        global_step += steps
        test_loss, accuracy = test_figures(model, test_data)
        torch.save(model.state_dict(), checkpoint_dir / f"epoch_{epoch:03d}.pt")
        result = EpochResult(
            epoch, train_loss, test_loss, accuracy, global_step, time.perf_counter() - started
        )
        history.append(result)
        print(result.line(name, config.epochs), flush=True)
    best = max(history, key=lambda result: (result.test_accuracy, result.epoch))
    return best.epoch, history


def train(run: Run, config: TrainingConfig, command: str, settings: Settings) -> Json:
    prepared = run.step("preprocess")
    source = prepared["parameters"]
    name = cli.model_name(source["dataset"], config.variant, source["domain"])
    normalisation = prepared["outputs"]["normalisation"]
    prep = preprocessing(normalisation["mean"], normalisation["std"], source["domain"])
    directory = Path(prepared["outputs"]["directory"])
    train_data = load_tensors(directory / "train", prep)
    test_data = load_tensors(directory / "test", prep)
    classes: dict[str, str] = prepared["outputs"]["classes"]
    inputs = {"preprocess": str(directory)}
    with run.record(STEP, {**config.parameters(), "seed": config.seed}, inputs) as outputs:
        started = time.perf_counter()
        generator = make_deterministic(config.seed, settings.torch_threads)
        model = network.build(config.variant, len(classes))
        checkpoints = run.step_dir(STEP) / "checkpoints"
        best_epoch, history = fit(
            model,
            train_data,
            test_data,
            config=config,
            generator=generator,
            checkpoint_dir=checkpoints,
            name=name,
        )
        model.load_state_dict(torch.load(checkpoints / f"epoch_{best_epoch:03d}.pt"))
        training_time = time.perf_counter() - started
        model_bytes = artifacts.export_onnx(model.eval(), prep.tensor_shape)
        staged = run.step_dir(STEP) / name
        description = model_description(
            run,
            prepared,
            config=config,
            prep=prep,
            command=command,
            best_epoch=best_epoch,
            training_time=training_time,
            model=model,
        )
        metadata = artifacts.model_metadata(name, model_bytes, classes, description)
        artifacts.write_model_dir(staged, model_bytes, metadata)
        outputs.update(
            {
                "model_dir": str(staged),
                "model_name": name,
                "version": metadata["version"],
                "best_epoch": best_epoch,
                "checkpoint": str(checkpoints / f"epoch_{best_epoch:03d}.pt"),
                "history": [vars(result) for result in history],
                # What the training transform normalised with (acceptance test 6).
                "normalisation": {"mean": list(prep.mean), "std": list(prep.std)},
                "preprocessing": prep.to_metadata(),
                "training_time_s": round(training_time, 3),
            }
        )
    print(
        f"{name}  best epoch {best_epoch}  exported {staged / 'model.onnx'}  "
        f"version {metadata['version']}  training {training_time:.1f} s",
        flush=True,
    )
    return run.step(STEP)


def model_description(
    run: Run,
    prepared: Json,
    *,
    config: TrainingConfig,
    prep: Preprocessing,
    command: str,
    best_epoch: int,
    training_time: float,
    model: nn.Module,
) -> dict[str, Any]:
    source = prepared["parameters"]
    counts = prepared["outputs"]["counts"]
    split: Json = {"train": counts["train"], "test": counts["test"]}
    if source["dataset"] == "digits":
        split.update({"test_size": DIGITS_TEST_FRACTION, "stratified": True})
    return {
        "preprocessing": prep.to_metadata(),
        "training": {
            "dataset": prepared["outputs"]["dataset_description"],
            "domain": source["domain"],
            # What quantize needs to render the same training images again (machine-readable).
            "data": {key: source[key] for key in ("dataset", "domain", "seed")},
            "split": split,
            "seed": config.seed,
            "parameters": {
                **config.parameters(),
                "parameter_count": network.parameter_count(model),
                "best_epoch": best_epoch,
            },
            "training_time_s": round(training_time, 3),
            "run_id": run.run_id,
            "command": command,
        },
        "metrics": {},  # src.evaluate fills them from the exported graph
    }


def config_from(args: argparse.Namespace) -> TrainingConfig:
    return TrainingConfig(args.variant, args.epochs, args.batch_size, args.learning_rate, args.seed)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m src.train", description=__doc__)
    cli.add_training_arguments(parser)
    parser.add_argument("--seed", type=int, default=42)
    cli.add_run_arguments(parser, existing=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    args = parse_args(arguments)
    command = shlex.join(["python", "-m", "src.train", *arguments])
    try:
        train(Run(args.runs_dir, args.run_id), config_from(args), command, Settings())
    except RunError as error:
        return cli.fail(str(error))
    return 0


if __name__ == "__main__":
    sys.exit(main())
