"""SPEC 2.1 acceptance 3 and Deployment, on the files themselves (no Docker engine or cluster):
the Dockerfile bakes models/iris_svc into the image and points MODEL_DIR at it; `make build`
tags the image `<app version>-<model version>` (dry run) and fails without a model; compose and
the kustomization deploy that same tag; the k8s objects are shaped as SPEC 2.1 says; and the
service's code has no way to fetch a model over the network (behaviour 2).

Expected values are read here from pattern.toml and the model's metadata.json directly."""

from __future__ import annotations

import ast
import json
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.artifacts import parse_dockerfile
from tests.support.pattern import REPO_ROOT

PATTERN = "chapter3_release_patterns/model_in_image_pattern"
DIRECTORY = REPO_ROOT / PATTERN
IMAGE = "ml-system-in-actions/model_in_image_pattern-api"
MODEL_SOURCE = "models/iris_svc"
NAMESPACE = "model-in-image"
BIN = Path(sys.executable).parent
# client modules (`http` alone is only HTTPStatus; http.client is its client)
NETWORK_MODULES = ("httpx", "requests", "urllib", "urllib3", "http.client", "socket", "aiohttp")


@pytest.fixture(scope="module")
def expected_tag() -> str:
    """`<pattern.toml version>-<metadata.json version>`, read here, not through the harness."""
    metadata = DIRECTORY / MODEL_SOURCE / "metadata.json"
    if not metadata.is_file():
        pytest.fail(f"{metadata} is missing: run `make models` in {PATTERN}")
    app_version = tomllib.loads((DIRECTORY / "pattern.toml").read_text())["pattern"]["version"]
    model_version = json.loads(metadata.read_text())["version"]
    return f"{app_version}-{model_version}"


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    """What `kubectl apply -k manifests/` would apply."""
    kustomize = subprocess.run(
        [str(BIN / "kubectl"), "kustomize", str(DIRECTORY / "manifests")],
        capture_output=True,
        text=True,
        check=True,
    )
    return [doc for doc in yaml.safe_load_all(kustomize.stdout) if doc]


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in objects if (o["kind"], o["metadata"]["name"]) == (kind, name)]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} objects"
    return matches[0]


def api_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    containers = find(objects, "Deployment", "api")["spec"]["template"]["spec"]["containers"]
    return next(container for container in containers if container["name"] == "api")


# --- the image carries the model ------------------------------------------------------------


def test_the_dockerfile_copies_the_model_directory_and_sets_model_dir_to_it() -> None:
    instructions = parse_dockerfile(DIRECTORY / "Dockerfile")
    copies = [
        i for i in instructions
        if i.keyword == "COPY" and shlex.split(i.arguments)[0].rstrip("/") == MODEL_SOURCE
    ]  # fmt: skip
    assert len(copies) == 1, "one COPY of models/iris_svc"
    assert copies[0].comments[-1] == "# generated: make models"
    destination = shlex.split(copies[0].arguments)[-1].rstrip("/")
    workdir = next(i.arguments for i in instructions if i.keyword == "WORKDIR")
    destination = str(Path(workdir) / destination)  # a relative destination is under WORKDIR
    env = dict(
        pair.split("=", 1)
        for i in instructions
        if i.keyword == "ENV"
        for pair in shlex.split(i.arguments)
    )
    assert env["MODEL_DIR"].rstrip("/") == destination


def test_compose_and_k8s_point_model_dir_at_the_baked_directory() -> None:
    env = dict(
        pair.split("=", 1)
        for i in parse_dockerfile(DIRECTORY / "Dockerfile")
        if i.keyword == "ENV"
        for pair in shlex.split(i.arguments)
    )
    compose = yaml.safe_load((DIRECTORY / "docker-compose.yml").read_text())
    assert compose["services"]["api"]["environment"]["MODEL_DIR"] == env["MODEL_DIR"]
    manifest = yaml.safe_load_all((DIRECTORY / "manifests" / "api.yml").read_text())
    deployment = next(doc for doc in manifest if doc["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "MODEL_DIR", "value": env["MODEL_DIR"]} in container["env"]


def test_the_service_code_imports_no_network_client() -> None:
    """Behaviour 2: nothing in src/ could fetch a model (the server itself is gunicorn's)."""
    imported: dict[str, set[str]] = {}
    for path in sorted((DIRECTORY / "src").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [alias.name for alias in node.names] if isinstance(node, ast.Import)
                else [node.module or ""] if isinstance(node, ast.ImportFrom)
                else []
            )  # fmt: skip
            for name in names:
                if any(name == m or name.startswith(m + ".") for m in NETWORK_MODULES):
                    imported.setdefault(name, set()).add(path.name)
    assert imported == {}


# --- the tag names the model: make build, compose, kustomization ----------------------------


def test_the_build_dry_run_tags_the_image_with_the_model_version(expected_tag: str) -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(DIRECTORY), "build", "DRY_RUN=1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    builds = [line for line in result.stdout.splitlines() if line.startswith("$ docker build")]
    assert builds == [f"$ docker build -t {IMAGE}:{expected_tag} -f Dockerfile ."]
    assert builds[0].split()[4].endswith("-" + expected_tag.rsplit("-", 1)[1])


def test_the_build_fails_without_a_model(tmp_path: Path) -> None:
    copy = tmp_path / "model_in_image_pattern"
    shutil.copytree(DIRECTORY, copy, ignore=shutil.ignore_patterns("models", "var", "*cache*"))
    result = subprocess.run(
        [sys.executable, "-m", "tests.support.launcher", "build", str(copy), "--dry-run"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "docker build" not in result.stdout
    assert f"{copy}/{MODEL_SOURCE}/metadata.json" in result.stderr
    assert "make models" in result.stderr


def test_compose_and_the_kustomization_deploy_that_tag(
    expected_tag: str, rendered: list[dict[str, Any]]
) -> None:
    kustomization = yaml.safe_load((DIRECTORY / "manifests" / "kustomization.yml").read_text())
    assert kustomization["images"] == [{"name": IMAGE, "newTag": expected_tag}]
    assert api_container(rendered)["image"] == f"{IMAGE}:{expected_tag}"
    compose = yaml.safe_load((DIRECTORY / "docker-compose.yml").read_text())
    assert compose["services"]["api"]["image"] == f"{IMAGE}:{expected_tag}"


# --- k8s: the HPA owns the replicas ---------------------------------------------------------


def test_the_deployment_leaves_replicas_to_the_hpa(rendered: list[dict[str, Any]]) -> None:
    deployment = find(rendered, "Deployment", "api")
    assert "replicas" not in deployment["spec"]
    hpa = find(rendered, "HorizontalPodAutoscaler", "api")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "api",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 10)
    assert hpa["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 50},
            },
        }
    ]
    assert {obj["metadata"].get("namespace") for obj in rendered if obj["kind"] != "Namespace"} == {
        NAMESPACE
    }


def test_each_pod_runs_one_worker_with_guaranteed_resources(
    rendered: list[dict[str, Any]],
) -> None:
    container = api_container(rendered)
    assert {"name": "WORKERS", "value": "1"} in container["env"]
    resources = {"cpu": "500m", "memory": "300Mi"}
    assert container["resources"] == {"requests": resources, "limits": resources}


def test_probes_and_service(rendered: list[dict[str, Any]]) -> None:
    container = api_container(rendered)
    paths = {
        probe: (container[probe]["httpGet"]["path"], container[probe]["httpGet"]["port"])
        for probe in ("startupProbe", "readinessProbe", "livenessProbe")
    }
    assert paths == {
        "startupProbe": ("/ready", 8000),
        "readinessProbe": ("/ready", 8000),
        "livenessProbe": ("/health", 8000),
    }
    ports = find(rendered, "Service", "api")["spec"]["ports"]
    assert [(port["port"], port["targetPort"]) for port in ports] == [(8000, 8000)]
