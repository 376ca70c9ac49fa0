"""`python -m builder --variable-file vars.yaml --output-dir DIR [--name NAME] [--force]`.

Exit status 0: the pattern is in DIR; 2: nothing was written (invalid variables, each problem on
its own line of stderr, or DIR exists and --force was not given).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from builder.render import render_tree
from builder.variables import validate

USAGE_ERROR = 2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m builder", description=__doc__)
    parser.add_argument("--variable-file", type=Path, required=True)
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--name", help="overrides the variables file's name")
    parser.add_argument("--force", action="store_true", help="replace an existing output dir")
    return parser.parse_args(argv)


def read_variables(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise SystemExit(refuse([f"{path}: {error}"])) from error


def refuse(problems: list[str]) -> int:
    print("builder: nothing written:", file=sys.stderr)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)
    return USAGE_ERROR


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    document = read_variables(args.variable_file)
    if isinstance(document, dict) and args.name is not None:
        document = {**document, "name": args.name}
    variables, problems = validate(document)
    if variables is None:
        return refuse(problems or ["the variables file is no mapping"])
    if args.output_dir.exists() and not args.force:
        return refuse([f"{args.output_dir} exists: pass --force to replace it"])
    try:
        render_tree(variables, args.output_dir, args.force)
    except FileExistsError:  # appeared while rendering
        return refuse([f"{args.output_dir} exists: pass --force to replace it"])
    print(f"builder: {variables.name} written to {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
