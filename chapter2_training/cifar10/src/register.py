"""`python -m src.register`: record the trained model directories in the model DB, project
`digits` (SPEC 1.2 behaviour 8: as 1.1 behaviour 5, API of SPEC 1.3). `python -m src.pipeline`
calls `register_or_fail` too when MODEL_DB_URL is set, after every other step has finished."""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from src.configurations import LOCAL_MODEL_DB_URL, Settings

API_PREFIX = "/v0.1/api"
PROJECT = "digits"
ARTIFACTS = ("model.onnx", "label.json", "metadata.json")
PAGE_SIZE = 500  # the registry's maximum `limit`
ALIAS = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")  # SPEC 1.3 behaviour 5


Json = dict[str, Any]


class RegistryError(Exception):
    """The model DB refused a request or did not answer; the message is one line."""


@dataclass(frozen=True)
class Registration:
    model_name: str
    version: int
    created: bool
    alias: str | None

    def describe(self) -> str:
        outcome = "registered as" if self.created else "unchanged: already registered as"
        alias = f", alias {self.alias}" if self.alias else ""
        return f"{self.model_name}  {outcome} version {self.version} (project {PROJECT}{alias})"


def alias_name(text: str) -> str:
    """argparse type: refuse a name the registry would refuse, before anything is trained."""
    if not ALIAS.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} does not match {ALIAS.pattern}")
    return text


def request(
    client: httpx.Client, method: str, path: str, expected: tuple[int, ...], **kwargs: Any
) -> httpx.Response:
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as error:
        reason = str(error) or type(error).__name__
        raise RegistryError(f"{method} {client.base_url.join(path)}: {reason}") from error
    if response.status_code not in expected:
        body = " ".join(response.text.split())[:200]
        raise RegistryError(f"{method} {path} answered {response.status_code}: {body}")
    return response


def list_all(client: httpx.Client, path: str) -> list[Json]:
    items: list[Json] = []
    while True:
        params = {"limit": PAGE_SIZE, "offset": len(items)}
        page: list[Json] = request(client, "GET", path, (200,), params=params).json()
        items.extend(page)
        if len(page) < PAGE_SIZE:
            return items


def get_or_create(client: httpx.Client, path: str, body: Json, find: Callable[[], Json]) -> Json:
    response = request(client, "POST", path, (201, 409), json=body)
    created: Json = response.json()
    return created if response.status_code == 201 else find()  # 409: it exists


def project_id(client: httpx.Client) -> str:
    def find() -> Json:
        found: Json = request(client, "GET", f"/projects/name/{PROJECT}", (200,)).json()
        return found

    body = {
        "project_name": PROJECT,
        "description": "image classifiers trained by the cifar10 pipeline",
    }
    return str(get_or_create(client, "/projects", body, find)["project_id"])


def model_id(client: httpx.Client, project: str, metadata: Json) -> str:
    name = metadata["name"]

    def find() -> Json:
        for model in list_all(client, f"/models/project-id/{project}"):
            if model["model_name"] == name:
                return model
        raise RegistryError(f"model {name} exists (409) but project {PROJECT} does not list it")

    body = {"project_id": project, "model_name": name, "description": metadata["task"]}
    return str(get_or_create(client, "/models", body, find)["model_id"])


def latest_version(client: httpx.Client, model: str) -> Json | None:
    """The highest version with its artifacts ({filename: sha256}), or None."""
    versions = list_all(client, f"/models/{model}/versions")
    if not versions:
        return None
    latest = max(versions, key=lambda version: int(version["version"]))
    listed = request(
        client, "GET", f"/models/{model}/versions/{latest['version']}/artifacts", (200,)
    )
    return {**latest, "artifacts": {item["filename"]: item["sha256"] for item in listed.json()}}


def registered_sha256(version: Json) -> str | None:
    # A version whose upload was interrupted has no model.onnx yet; its metadata names the graph.
    if "model.onnx" in version["artifacts"]:
        return str(version["artifacts"]["model.onnx"])
    metadata = version.get("metadata") or {}
    return str(metadata["sha256"]) if "sha256" in metadata else None


def create_version(client: httpx.Client, model: str, metadata: Json) -> tuple[int, str]:
    """An experiment (the run: parameters, data, evaluations) and a version that points at it."""
    training = metadata["training"]
    split, dataset = training["split"], training["dataset"]
    experiment: Json = request(
        client,
        "POST",
        "/experiments",
        (201,),
        json={
            "model_id": model,
            "model_version_id": metadata["version"],
            "parameters": {
                **training["parameters"],
                "seed": training["seed"],
                "command": training["command"],
            },
            "training_dataset": f"{dataset}: {split['train']} images, seed {training['seed']}",
            "test_dataset": f"{dataset}: {split['test']} held-out images",
            "evaluations": metadata["metrics"],
        },
    ).json()
    body = {
        "experiment_id": experiment["experiment_id"],
        "description": f"{metadata['name']} {metadata['version']}",
        "metadata": metadata,
    }
    version: Json = request(client, "POST", f"/models/{model}/versions", (201,), json=body).json()
    return int(version["version"]), str(experiment["experiment_id"])


def upload(client: httpx.Client, model: str, version: int, path: Path) -> str:
    """PUT one artifact with its checksum; returns its download path."""
    content = path.read_bytes()
    digest = hashlib.sha256(content).hexdigest()
    target = f"/models/{model}/versions/{version}/artifacts/{path.name}"
    headers = {"X-Content-SHA256": digest, "Content-Type": "application/octet-stream"}
    stored: Json = request(
        client, "PUT", target, (200, 201), content=content, headers=headers
    ).json()
    if stored.get("sha256") != digest:
        raise RegistryError(
            f"{target}: registry stored sha256 {stored.get('sha256')}, not {digest}"
        )
    return API_PREFIX + target


def register_model_dir(client: httpx.Client, directory: Path, alias: str | None) -> Registration:
    """Get or create project and model, reuse the latest version if it holds this very graph,
    else record a new experiment and version with the three artifacts; then set the alias."""
    metadata: Json = json.loads((directory / "metadata.json").read_text())
    if hashlib.sha256((directory / "model.onnx").read_bytes()).hexdigest() != metadata["sha256"]:
        raise RegistryError(f"{directory}/model.onnx does not match metadata.json: retrain it")
    model = model_id(client, project_id(client), metadata)
    latest = latest_version(client, model)
    experiment: str | None = None
    if latest is not None and registered_sha256(latest) == metadata["sha256"]:
        version, stored = int(latest["version"]), set(latest["artifacts"])
    else:
        (version, experiment), stored = create_version(client, model, metadata), set()
    paths = {
        name: upload(client, model, version, directory / name)
        for name in ARTIFACTS
        if name not in stored
    }
    if experiment is not None:
        merge = f"/experiments/artifact-file-paths/{experiment}"
        request(client, "POST", merge, (200,), json={"artifact_file_paths": paths})
    if alias:
        request(
            client, "PUT", f"/models/{model}/aliases/{alias}", (200,), json={"version": version}
        )
    return Registration(metadata["name"], version, experiment is not None, alias)


def register_or_fail(directories: list[Path], url: str, timeout_s: float, alias: str | None) -> int:
    """Register each directory; a registry error ends the command with one line and exit 1."""
    try:
        with httpx.Client(base_url=url + API_PREFIX, timeout=timeout_s) as client:
            for directory in directories:
                print(register_model_dir(client, directory, alias).describe(), flush=True)
    except RegistryError as error:
        print(f"error: registration in the model DB at {url} failed: {error}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.register", description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=Path("models"))
    parser.add_argument("--alias", type=alias_name, help="alias set to the registered version")
    parser.add_argument(
        "--require",
        type=lambda text: [name for name in text.split(",") if name],
        default=[],
        help="comma-separated model names that must be there (else nothing is registered)",
    )
    args = parser.parse_args(argv)
    settings = Settings()
    # Every model directory there (the catalogue's, and e.g. fake_resnet of a test run).
    trained = sorted(path.parent for path in args.model_dir.glob("*/model.onnx"))
    missing = sorted(set(args.require) - {directory.name for directory in trained})
    if missing or not trained:
        print(
            f"error: not trained yet in {args.model_dir}: {', '.join(missing) or 'any model'} "
            "(run `make models` first)",
            file=sys.stderr,
        )
        return 1
    url = settings.model_db_url or LOCAL_MODEL_DB_URL
    return register_or_fail(trained, url, settings.model_db_timeout_s, args.alias)


if __name__ == "__main__":
    sys.exit(main())
