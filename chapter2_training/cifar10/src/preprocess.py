"""`python -m src.preprocess`: the data set as PNG files, `runs/<run_id>/preprocess/{train,test}/
<label>/<id>.png`, with classes.json, meta_train.json, meta_test.json and the training images'
per-channel mean/std (SPEC 1.2 behaviour 1)."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from src import cli
from src.image_input import Preprocessing
from src.ml import data
from src.ml.artifacts import json_bytes
from src.ml.transform import channel_statistics
from src.runs import Json, Run, RunError

STEP = "preprocess"


def write_split(directory: Path, items: list[data.Item]) -> dict[str, int]:
    """Each item as `<label>/<id>.png`; returns {relative path: label} (the meta file)."""
    meta: dict[str, int] = {}
    for item in items:
        path = directory / str(item.label) / f"{item.item_id}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        item.image.save(path, format="PNG")
        meta[str(path.relative_to(directory))] = item.label
    return meta


def preprocess(
    run: Run, *, dataset_name: str, domain: str, seed: int, data_dir: Path, download: bool
) -> Json:
    parameters: Json = {"dataset": dataset_name, "domain": domain, "seed": seed}
    inputs: Json = {"data_dir": str(data_dir)} if dataset_name == "cifar10" else {}
    dataset = data.load(dataset_name, domain, seed, data_dir, download)
    directory = run.step_dir(STEP)
    shutil.rmtree(directory, ignore_errors=True)  # an interrupted attempt leaves nothing behind
    with run.record(STEP, parameters, inputs) as outputs:
        classes = {str(index): name for index, name in enumerate(dataset.classes)}
        for part, items in (("train", dataset.train), ("test", dataset.test)):
            meta = write_split(directory / part, items)
            (directory / f"meta_{part}.json").write_bytes(json_bytes(meta))
        (directory / "classes.json").write_bytes(json_bytes(classes))
        scale = Preprocessing.scale  # the same scale image_input applies
        normalisation = channel_statistics([item.image for item in dataset.train], scale)
        (directory / "normalisation.json").write_bytes(json_bytes(normalisation))
        outputs.update(
            {
                "directory": str(directory),
                "classes": classes,
                "counts": {"train": len(dataset.train), "test": len(dataset.test)},
                "normalisation": normalisation,
                "dataset_description": data.DESCRIPTIONS[dataset_name],
            }
        )
    print(
        f"preprocess  {dataset_name}/{domain}: {len(dataset.train)} train, "
        f"{len(dataset.test)} test images in {directory}  "
        f"mean {normalisation['mean']} std {normalisation['std']}",
        flush=True,
    )
    return run.step(STEP)


def reuse(run: Run, cached: Run, dataset_name: str, domain: str, seed: int) -> Json:
    """`--cached-data RUN_ID`: this run's preprocess step is the earlier run's output, if that
    was made from the same data set, domain and seed."""
    earlier = cached.step(STEP)
    wanted = {"dataset": dataset_name, "domain": domain, "seed": seed}
    if earlier["parameters"] != wanted:
        raise RunError(f"--cached-data {cached.run_id} holds {earlier['parameters']}, not {wanted}")
    with run.record(STEP, {**wanted, "cached_data": cached.run_id}, {}) as outputs:
        outputs.update(earlier["outputs"])
    print(f"preprocess  reused from run {cached.run_id}: {earlier['outputs']['directory']}")
    return run.step(STEP)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m src.preprocess", description=__doc__)
    cli.add_data_arguments(parser)
    cli.add_run_arguments(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    args = parse_args(arguments)
    try:
        data.check_available(args.dataset, args.data_dir, args.download)
        run = cli.open_run(args, "python -m src.preprocess", arguments)
        preprocess(
            run,
            dataset_name=args.dataset,
            domain=args.domain,
            seed=args.seed,
            data_dir=args.data_dir,
            download=args.download,
        )
    except data.DatasetUnavailable as error:
        return cli.fail(str(error))
    print(f"run_id {run.run_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
