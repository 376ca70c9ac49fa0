"""Arguments shared by the pipeline and its steps, so that each step runs alone with the same
flags as `python -m src.pipeline` (SPEC 1.2 "Processes")."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from src.ml import data
from src.ml.network import VARIANTS
from src.runs import Run, new_run_id

DEFAULT_EPOCHS = 10


def model_name(dataset: str, variant: str, domain: str) -> str:
    """The catalogue name (SPEC 0.2): digits_resnet, digits_resnet_small, ..._blackboard."""
    name = f"{dataset}_resnet"
    if variant != "standard":
        name += f"_{variant}"
    if domain != "paper":
        name += f"_{domain}"
    return name


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", choices=data.DATASETS, default="digits")
    parser.add_argument("--domain", choices=data.DOMAINS, default="paper")
    parser.add_argument(
        "--data-dir", type=Path, default=Path("data/cifar10"), help="CIFAR-10 files (cifar10)"
    )
    parser.add_argument(
        "--download", action="store_true", help="cifar10: fetch the files (needs internet)"
    )
    parser.add_argument("--seed", type=int, default=42)


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variant", choices=tuple(VARIANTS), default="standard")
    parser.add_argument("--epochs", type=positive, default=DEFAULT_EPOCHS)
    parser.add_argument("--batch-size", type=positive, default=64)
    parser.add_argument("--learning-rate", type=float, default=0.05)


def add_run_arguments(parser: argparse.ArgumentParser, *, existing: bool = False) -> None:
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    parser.add_argument(
        "--run-id",
        required=existing,
        help="the run whose earlier steps this step continues"
        if existing
        else "default: a new run",
    )


def add_output_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output-dir", type=Path, default=Path("models"))


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def open_run(args: argparse.Namespace, program: str, arguments: list[str]) -> Run:
    label = model_name(args.dataset, getattr(args, "variant", "standard"), args.domain)
    run = Run(args.runs_dir, args.run_id or new_run_id(label))
    run.start(shlex.join([*shlex.split(program), *arguments]), label)
    return run


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr, flush=True)
    return 2
