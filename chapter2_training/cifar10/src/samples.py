"""`python -m src.samples --domain paper --count 250 --size 64 --format png --out DIR`: held-out
digits (the test split of every digits model, never a training image) as image files named
0000, 0001, ... with `labels.json` (item id → true label) and `sample.png` (SPEC 1.2
behaviour 11, SPEC 0.10). The serving patterns' `make models` fills their data/ with it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from src import cli
from src.ml import data

FORMATS = {"png": ("PNG", ".png", {}), "jpeg": ("JPEG", ".jpg", {"quality": 90})}
SAMPLE_FILE = "sample.png"
LABELS_FILE = "labels.json"


def write_samples(
    out: Path, *, domain: str, count: int, size: int, image_format: str, seed: int
) -> dict[str, str]:
    """The first `count` held-out digits rendered at sizexsize; returns {item id: label}."""
    items = list(data.held_out_digits(domain, seed, size))
    if count > len(items):
        raise ValueError(f"--count {count}: the held-out split has {len(items)} images")
    pil_format, suffix, options = FORMATS[image_format]
    out.mkdir(parents=True, exist_ok=True)
    labels: dict[str, str] = {}
    for item in items[:count]:
        item.image.save(out / f"{item.item_id}{suffix}", format=pil_format, **options)
        labels[item.item_id] = str(item.label)
    (out / LABELS_FILE).write_text(json.dumps(labels, indent=2) + "\n")
    items[0].image.save(out / SAMPLE_FILE, format="PNG")  # the I-API `/predict/test` image
    return labels


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m src.samples", description=__doc__)
    parser.add_argument("--domain", choices=data.DOMAINS, default="paper")
    parser.add_argument("--count", type=cli.positive, default=250)
    parser.add_argument("--size", type=cli.positive, default=64)
    parser.add_argument("--format", choices=tuple(FORMATS), default="png")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=42, help="the split's seed (as training)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        labels = write_samples(
            args.out,
            domain=args.domain,
            count=args.count,
            size=args.size,
            image_format=args.format,
            seed=args.seed,
        )
    except ValueError as error:
        return cli.fail(str(error))
    print(
        f"{len(labels)} held-out {args.domain} digits, {args.size}x{args.size} {args.format}, "
        f"in {args.out} (+ {LABELS_FILE}, {SAMPLE_FILE})",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
