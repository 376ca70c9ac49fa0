"""SPEC 2.2 acceptance test 6, on the files: the init container runs the `loader` line, it and the
API mount one volume at MODEL_DIR (k8s and compose alike), and no model enters the API image."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import yaml

from tests.chapter3_release_patterns.model_load_pattern.harness import PATTERN
from tests.support.artifacts import (
    dockerignored,
    exec_form,
    parse_dockerfile,
    read_lines,
    render,
)

WORKDIR = PurePosixPath("/app")  # WORKDIR of both images: relative paths of the line start here
LOADER = PATTERN.job_commands["loader"]


def pod_spec() -> dict[str, Any]:
    rendered = render(PATTERN.directory)
    assert not rendered.problems, rendered.problems
    deployment = next(
        obj
        for obj in rendered.objects
        if obj["kind"] == "Deployment" and obj["metadata"]["name"] == "api"
    )
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def named(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(item for item in items if item["name"] == name)


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item.get("value") for item in container.get("env", [])}


def mounted_at(container: dict[str, Any], path: str) -> str | None:
    """The volume name mounted at `path`, if any."""
    return next(
        (
            mount["name"]
            for mount in container.get("volumeMounts", [])
            if mount["mountPath"] == path
        ),
        None,
    )


def loader_dest() -> str:
    """Where the loader line installs, inside the image."""
    return str(WORKDIR / LOADER.argv[LOADER.argv.index("--dest") + 1])


def test_the_init_container_runs_the_loader_line() -> None:
    init = named(pod_spec()["initContainers"], "model-loader")
    assert init["command"] == LOADER.argv
    assert init["image"].startswith("ml-system-in-actions/model_load_pattern-loader:")
    dockerfile_cmd = [i for i in parse_dockerfile(PATTERN.directory / "Dockerfile.loader")
                      if i.keyword == "CMD"][-1]  # fmt: skip
    assert exec_form(dockerfile_cmd.arguments) == LOADER.argv


def test_the_init_container_and_the_api_share_one_volume_at_model_dir() -> None:
    spec = pod_spec()
    init, api = named(spec["initContainers"], "model-loader"), named(spec["containers"], "api")
    model_dir = env_of(api)["MODEL_DIR"]
    assert loader_dest() == model_dir
    volume = mounted_at(api, model_dir)
    assert volume is not None
    assert mounted_at(init, model_dir) == volume
    assert "emptyDir" in named(spec["volumes"], volume)
    assert env_of(api)["MODEL_SOURCE"] == LOADER.argv[LOADER.argv.index("--source") + 1]
    assert env_of(init)["MODEL_DB_URL"] == env_of(api)["MODEL_DB_URL"]
    assert env_of(api)["MODEL_DB_URL"] == "http://model-db.model-db.svc.cluster.local:8100"


def test_compose_gates_the_api_on_the_loader_and_shares_its_volume() -> None:
    services = yaml.safe_load((PATTERN.directory / "docker-compose.yml").read_text())["services"]
    loader, api = services["loader"], services["api"]
    model_dir = api["environment"]["MODEL_DIR"]
    assert loader_dest() == model_dir == loader["environment"]["MODEL_DIR"]
    volumes = {volume.split(":")[1]: volume.split(":")[0] for volume in api["volumes"]}
    assert f"{volumes[model_dir]}:{model_dir}" in loader["volumes"]
    assert api["depends_on"]["loader"]["condition"] == "service_completed_successfully"
    assert loader["depends_on"]["publish"]["condition"] == "service_completed_successfully"


def test_the_api_image_holds_no_model() -> None:
    directory = PATTERN.directory
    ignored = read_lines(directory / ".dockerignore")
    for dockerfile in ("Dockerfile", "Dockerfile.loader"):
        for instruction in parse_dockerfile(directory / dockerfile):
            if instruction.keyword in ("COPY", "ADD"):
                sources = (exec_form(instruction.arguments) or instruction.arguments.split())[:-1]
                assert not any(s.startswith("models") or s.endswith(".onnx") for s in sources)
    # whatever `make models` or a run wrote into the build context stays out of it
    for path in directory.rglob("*.onnx"):
        assert dockerignored(path.relative_to(directory).as_posix(), ignored), path
    for written in ("models/iris_svc/model.onnx", "var/model/model.onnx", "src/model.onnx"):
        assert dockerignored(written, ignored), written
