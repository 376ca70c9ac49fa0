"""`python -m src.promote --model iris/iris_svc --alias production`: point an alias of a model
in the model DB at VERSION (default: the model's newest version), as `make promote VERSION=2`.

Nothing is rebuilt or restarted: the API resolves the alias again every MODEL_POLL_INTERVAL_S
(or on POST /admin/reload) and swaps in the version the alias now names (SPEC 2.2 behaviour 4).
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

import httpx

from src.configurations import PromoteSettings

API = "/v0.1/api"
MODEL_REF = re.compile(
    r"(?P<project>[A-Za-z0-9][A-Za-z0-9._-]*)/(?P<model>[A-Za-z0-9][A-Za-z0-9._-]*)"
)
ALIAS = re.compile(r"[a-z][a-z0-9_-]{0,31}")


class PromoteError(Exception):
    """The model DB refused or did not answer; the message is one line."""


def _pattern_type(pattern: re.Pattern[str], what: str) -> Any:
    def check(text: str) -> str:
        if not pattern.fullmatch(text):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return text

    return check


def call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    try:
        response = client.request(method, API + path, **kwargs)
    except httpx.HTTPError as error:
        raise PromoteError(f"{method} {client.base_url}{API}{path}: {error}") from error
    if response.status_code != 200:
        try:
            message = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:200]
        raise PromoteError(f"{method} {API}{path} answered {response.status_code}: {message}")
    return response


def model_id(client: httpx.Client, project: str, model: str) -> str:
    models = call(client, "GET", f"/models/project-name/{project}", params={"limit": 500}).json()
    for item in models:
        if item["model_name"] == model:
            return str(item["model_id"])
    raise PromoteError(f"no model {model!r} in project {project!r}")


def newest_version(client: httpx.Client, model: str) -> int:
    # Versions are listed in ascending order: the last page of one holds the newest.
    path = f"/models/{model}/versions"
    total = int(call(client, "GET", path, params={"limit": 1}).headers["X-Total-Count"])
    if total == 0:
        raise PromoteError("the model has no version yet: run `make publish`")
    last = call(client, "GET", path, params={"limit": 1, "offset": total - 1}).json()
    return int(last[0]["version"])


def promote(client: httpx.Client, project: str, model: str, alias: str, version: int | None) -> str:
    identifier = model_id(client, project, model)
    target = version if version is not None else newest_version(client, identifier)
    before = call(client, "GET", f"/models/{identifier}/aliases").json().get(alias)
    call(client, "PUT", f"/models/{identifier}/aliases/{alias}", json={"version": target})
    was = f"was {before}" if before is not None else "new alias"
    return f"{project}/{model}: alias {alias} -> version {target} ({was})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.promote", description=__doc__)
    parser.add_argument(
        "--model", required=True, type=_pattern_type(MODEL_REF, "<project>/<model>")
    )
    parser.add_argument("--alias", default="production", type=_pattern_type(ALIAS, "an alias"))
    args = parser.parse_args(argv)
    settings = PromoteSettings()
    project, model = args.model.split("/")
    try:
        with httpx.Client(
            base_url=settings.model_db_url, timeout=settings.fetch_timeout_s
        ) as client:
            print(promote(client, project, model, args.alias, settings.version), flush=True)
    except PromoteError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
