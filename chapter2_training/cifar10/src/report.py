"""`python -m src.report --model-dir models NAME ...`: the table `make models` ends with (SPEC 1.2
demo): model, version, test accuracy, cross-domain accuracy, size and training time."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from src.ml.artifacts import read_metadata

HEADER = ("model", "version", "test accuracy", "other domain", "size", "training time")


def row(directory: Path) -> tuple[str, ...]:
    if not (directory / "metadata.json").is_file():
        return (directory.name, "missing", "", "", "", "")
    metadata = read_metadata(directory)
    metrics = metadata.get("metrics", {})
    cross = metrics.get("cross_domain_accuracy", {})
    seconds = metadata["training"].get("training_time_s")
    return (
        metadata["name"],
        metadata["version"],
        f"{metrics['accuracy']:.4f}" if "accuracy" in metrics else "not evaluated",
        ", ".join(f"{domain} {value:.4f}" for domain, value in cross.items()) or "-",
        f"{(directory / 'model.onnx').stat().st_size / 1024:.0f} KiB",
        f"{seconds:.1f} s" if seconds is not None else "-",
    )


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(line[column]) for line in rows) for column in range(len(HEADER))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in rows
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.report", description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=Path("models"))
    parser.add_argument("names", nargs="+")
    args = parser.parse_args(argv)
    print(table([HEADER, *(row(args.model_dir / name) for name in args.names)]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
