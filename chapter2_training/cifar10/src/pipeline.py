"""`python -m src.pipeline`: preprocess → train → evaluate (→ quantize with --quantize) (→ register
when MODEL_DB_URL is set) in one run, `runs/<run_id>/` (SPEC 1.2). Each step also runs alone
(`python -m src.preprocess|train|evaluate|quantize|register`). Nothing is published before the
model has been trained and evaluated, nothing registered before every other step succeeded."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from src import cli, evaluate, preprocess, quantize, register, train
from src.configurations import Settings
from src.ml import data
from src.runs import Run, RunError


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m src.pipeline", description=__doc__)
    cli.add_data_arguments(parser)
    cli.add_training_arguments(parser)
    cli.add_run_arguments(parser)
    cli.add_output_argument(parser)
    parser.add_argument(
        "--cached-data", metavar="RUN_ID", help="reuse that run's preprocess output"
    )
    parser.add_argument("--server-url", help="evaluate through this V2 server")
    parser.add_argument(
        "--quantize", action="store_true", help="also write <model>_int8 (static int8, QDQ)"
    )
    parser.add_argument("--alias", type=register.alias_name, help="registry alias (MODEL_DB_URL)")
    return parser.parse_args(argv)


def run_pipeline(
    args: argparse.Namespace, arguments: list[str], settings: Settings
) -> tuple[Run, list[Path]]:
    """Runs the steps; returns the run and the model directories it published."""
    run = cli.open_run(args, "python -m src.pipeline", arguments)
    print(f"run_id {run.run_id}  ({run.directory})", flush=True)
    if args.cached_data:
        cached = Run(args.runs_dir, args.cached_data)
        preprocess.reuse(run, cached, args.dataset, args.domain, args.seed)
    else:
        preprocess.preprocess(
            run,
            dataset_name=args.dataset,
            domain=args.domain,
            seed=args.seed,
            data_dir=args.data_dir,
            download=args.download,
        )
    command = shlex.join(["python", "-m", "src.pipeline", *arguments])
    train.train(run, train.config_from(args), command, settings)
    evaluated = evaluate.evaluate(run, args.output_dir, args.server_url, settings)
    published = [Path(evaluated["outputs"]["published"])]
    if args.quantize:
        quantized = quantize.quantize(
            run,
            published[0],
            args.output_dir,
            count=quantize.MAX_CALIBRATION_IMAGES,
            seed=args.seed,
            command=command,
        )
        published.append(Path(quantized["outputs"]["model_dir"]))
    return run, published


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    args = parse_args(arguments)
    settings = Settings()
    try:
        data.check_available(args.dataset, args.data_dir, args.download)
        run, published = run_pipeline(args, arguments, settings)
    except (data.DatasetUnavailable, RunError, evaluate.ServerError) as error:
        return cli.fail(str(error))
    if settings.model_db_url is None:
        return 0
    inputs = {"model_dirs": [str(path) for path in published]}
    with run.record("register", {"alias": args.alias}, inputs) as outputs:
        status = register.register_or_fail(
            published, settings.model_db_url, settings.model_db_timeout_s, args.alias
        )
        outputs.update({"model_db_url": settings.model_db_url, "exit_status": status})
    return status


if __name__ == "__main__":
    sys.exit(main())
