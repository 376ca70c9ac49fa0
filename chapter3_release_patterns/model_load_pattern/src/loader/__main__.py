"""`python -m src.loader --source <uri> --dest <model dir>`: fetch a model, verify, install.

The init container's command (k8s), the one-shot `loader` service (compose) and the `loader`
job (Procfile.jobs). One JSON log line says what happened; the exit code says it to scripts:

    0  loaded (or the destination already held that very model)
    1  bad invocation: unknown option, a source that is no source
    2  not found: the project, model, alias, version or a file does not exist
    3  verification failed: a sha256 differs (model DB, metadata.json, MODEL_SHA256)
    4  unreachable: no answer within FETCH_TIMEOUT_S, after FETCH_RETRIES retries
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import NoReturn

from src.common.logging import setup_logging
from src.configurations import FetchSettings
from src.loader.fetch import FetchError, load
from src.loader.sources import InvalidSource, parse_source

USAGE_ERROR = 1
logger = logging.getLogger("model_load_pattern.loader")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse exits 2 on a usage error; 2 means "not found" here.
        self.print_usage(sys.stderr)
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def parse_args(argv: list[str] | None, settings: FetchSettings) -> argparse.Namespace:
    parser = _Parser(
        prog="python -m src.loader",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--source", default=settings.model_source, help="default: MODEL_SOURCE")
    parser.add_argument(
        "--dest", type=Path, default=settings.model_dir, help="model directory; default: MODEL_DIR"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    settings = FetchSettings()
    setup_logging(settings.log_level)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    args = parse_args(argv, settings)
    destination = args.dest.expanduser().absolute()
    fields = {"source": args.source, "dest": str(destination)}
    try:
        parse_source(args.source)
        loaded = load(args.source, destination, settings)
    except InvalidSource as error:
        logger.error("model not loaded: %s", error, extra={**fields, "exit_code": USAGE_ERROR})
        return USAGE_ERROR
    except FetchError as error:
        logger.error(
            "model not loaded: %s",
            error,
            extra={**fields, "reason": error.reason, "exit_code": error.exit_code},
        )
        return error.exit_code
    resolved = loaded.resolved
    logger.info(
        "model loaded" if loaded.changed else "model already in place",
        extra={**fields, "version": resolved.version, "sha256": resolved.sha256,
               "changed": loaded.changed, "exit_code": 0},
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
