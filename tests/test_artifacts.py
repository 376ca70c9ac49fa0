"""Static checks of every pattern's Dockerfiles, compose file, manifests and requirement files
(CONVENTIONS 5, SPEC 0.8 and 0.11); the checks and the conventions they define are in
tests/support/artifacts.py.

Every directory holding a pattern.toml is checked, one test per check and pattern (or file), so
a new pattern is covered with no new test code. The negative tests break a copy of model_db on
purpose, one way each, and expect the check to report it: a check that went blind fails.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
import yaml

from tests.support.artifacts import (
    COMPOSE_FILE,
    PRED_FILES,
    QUEUE_FILES,
    Problems,
    ToolMissing,
    Yaml,
    canonical_common,
    check_common,
    check_compose_processes,
    check_compose_references,
    check_compose_schema,
    check_copy_sources,
    check_dockerfile,
    check_dockerfile_commands,
    check_image_input,
    check_image_tags,
    check_manifest_processes,
    check_manifest_references,
    check_manifest_schemas,
    check_manifest_services,
    check_pattern_toml,
    check_pod_hardening,
    check_pred_server,
    check_queue,
    check_requirements,
    read_yaml_documents,
)
from tests.support.pattern import REPO_ROOT, pattern_directories

PATTERNS = pattern_directories()
MODEL_DB = REPO_ROOT / "chapter2_training" / "model_db"


def relative(path: Path) -> str:
    return path.relative_to(REPO_ROOT).as_posix()


def files_of(*globs: str) -> list[tuple[Path, str]]:
    """(pattern directory, file name relative to it) of every matching file."""
    return [
        (directory, path.relative_to(directory).as_posix())
        for directory in PATTERNS
        for glob in globs
        for path in sorted(directory.glob(glob))
        if path.is_file()
    ]


def per_file(*globs: str) -> pytest.MarkDecorator:
    files = files_of(*globs)
    ids = [f"{relative(directory)}/{name}" for directory, name in files]
    return pytest.mark.parametrize(("directory", "name"), files, ids=ids)


per_pattern = pytest.mark.parametrize("directory", PATTERNS, ids=relative)


def expect_no_problems(problems: Problems) -> None:
    assert not problems, "\n".join(problems)


def skip_if_tool_missing(check: Callable[[], Problems]) -> Problems:
    """Problems of a check that needs pipenv: skipped where pipenv is missing, except on CI."""
    try:
        return check()
    except ToolMissing as missing:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(missing))


# --- every pattern of the repository ---------------------------------------------------------


@per_file("*compose*.yml", "*compose*.yaml")
def test_compose_file_follows_the_compose_spec(directory: Path, name: str) -> None:
    expect_no_problems(check_compose_schema(directory, name))


@per_pattern
def test_manifests_render_and_pass_the_kubernetes_schemas(directory: Path) -> None:
    expect_no_problems(check_manifest_schemas(directory))


@per_file("Dockerfile*")
def test_dockerfile_is_linted_and_pinned(directory: Path, name: str) -> None:
    expect_no_problems(check_dockerfile(directory, name))


@per_pattern
def test_dockerfile_cmd_is_a_procfile_command(directory: Path) -> None:
    expect_no_problems(check_dockerfile_commands(directory))


@per_pattern
def test_dockerfile_copy_sources_exist(directory: Path) -> None:
    expect_no_problems(check_copy_sources(directory))


@per_pattern
def test_pattern_toml_agrees_with_settings_and_routes(directory: Path) -> None:
    expect_no_problems(check_pattern_toml(directory))


@per_pattern
def test_compose_runs_the_procfile_commands(directory: Path) -> None:
    expect_no_problems(check_compose_processes(directory))


@per_pattern
def test_compose_references_exist(directory: Path) -> None:
    expect_no_problems(check_compose_references(directory))


@per_pattern
def test_images_are_tagged_as_make_build_tags_them(directory: Path) -> None:
    expect_no_problems(check_image_tags(directory))


@per_pattern
def test_manifests_run_the_procfile_commands(directory: Path) -> None:
    expect_no_problems(check_manifest_processes(directory))


@per_pattern
def test_manifest_services_select_pods_and_ports(directory: Path) -> None:
    expect_no_problems(check_manifest_services(directory))


@per_pattern
def test_manifest_references_exist(directory: Path) -> None:
    expect_no_problems(check_manifest_references(directory))


@per_pattern
def test_pods_are_hardened(directory: Path) -> None:
    expect_no_problems(check_pod_hardening(directory))


@per_file("requirements/*.txt")
def test_requirement_file_matches_the_lock(directory: Path, name: str) -> None:
    file_name = Path(name).name
    expect_no_problems(skip_if_tool_missing(lambda: check_requirements(directory, file_name)))


@pytest.mark.parametrize(
    "directory",
    sorted(path.parents[1] for path in REPO_ROOT.glob("chapter*/*/src/common")),
    ids=relative,
)
def test_common_modules_are_canonical_copies(directory: Path) -> None:
    expect_no_problems(check_common(directory, canonical_common()))


@per_pattern
def test_image_preprocessing_modules_are_canonical_copies(directory: Path) -> None:
    expect_no_problems(check_image_input(directory))


@per_pattern
def test_pred_servers_are_canonical_copies(directory: Path) -> None:
    expect_no_problems(check_pred_server(directory))


@per_pattern
def test_job_queues_are_canonical_copies(directory: Path) -> None:
    expect_no_problems(check_queue(directory))


# --- negative tests: a copy of model_db, broken on purpose -----------------------------------


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    if not (MODEL_DB / "pattern.toml").is_file():
        pytest.skip("chapter2_training/model_db is not there yet")
    copy = tmp_path / "model_db"
    ignore = shutil.ignore_patterns("var", "models", "__pycache__", ".*_cache")
    shutil.copytree(MODEL_DB, copy, ignore=ignore)
    return copy


def assert_reported(
    check: Callable[[Path], Problems], broken: Path, fragment: str, original: Path = MODEL_DB
) -> None:
    """`check` reports, on the broken copy, a problem it does not report on the original
    (model_db unless said otherwise)."""
    before = set(skip_if_tool_missing(lambda: check(original)))
    new = [
        problem for problem in skip_if_tool_missing(lambda: check(broken)) if problem not in before
    ]
    assert any(fragment in problem for problem in new), f"no new problem with {fragment!r}: {new}"


def replace_text(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path.name} no longer holds {old!r}: update this test"
    path.write_text(text.replace(old, new, 1))


def edit_yaml(path: Path, change: Callable[[list[Yaml]], object]) -> None:
    documents = read_yaml_documents(path)
    change(documents)
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))


def named(documents: list[Yaml], kind: str, name: str) -> Yaml:
    return next(d for d in documents if (d["kind"], d["metadata"]["name"]) == (kind, name))


def pod_spec(documents: list[Yaml]) -> Yaml:
    return named(documents, "Deployment", "model-db")["spec"]["template"]["spec"]


def api_container(documents: list[Yaml]) -> Yaml:
    return pod_spec(documents)["containers"][0]


def api_service(documents: list[Yaml]) -> Yaml:
    return named(documents, "Service", "model-db")["spec"]


def edit_model_db_yml(copy: Path, change: Callable[[list[Yaml]], object]) -> None:
    edit_yaml(copy / "manifests" / "model-db.yml", change)


def edit_service(copy: Path, service: str, change: Callable[[Yaml], object]) -> None:
    edit_yaml(copy / COMPOSE_FILE, lambda documents: change(documents[0]["services"][service]))


def test_a_cmd_that_is_no_procfile_command_is_reported(copy: Path) -> None:
    replace_text(copy / "Dockerfile", "create_app()", "make_app()")
    assert_reported(check_dockerfile_commands, copy, "equals no Procfile")
    # compose runs the image's CMD for model_db
    assert_reported(check_compose_processes, copy, "service model_db: runs")


def test_a_service_target_port_that_is_no_container_port_is_reported(copy: Path) -> None:
    edit_model_db_yml(copy, lambda docs: api_service(docs)["ports"][0].update(targetPort=8101))
    assert_reported(check_manifest_services, copy, "targetPort 8101")


def test_a_service_selecting_no_pod_is_reported(copy: Path) -> None:
    edit_model_db_yml(copy, lambda docs: api_service(docs).update(selector={"a": "b"}))
    assert_reported(check_manifest_services, copy, "matches no pod template")


def test_a_container_port_other_than_the_process_port_is_reported(copy: Path) -> None:
    edit_model_db_yml(copy, lambda docs: api_container(docs)["ports"][0].update(containerPort=8101))
    assert_reported(check_manifest_processes, copy, "containerPort 8101")


def test_a_port_other_than_the_settings_default_is_reported(copy: Path) -> None:
    replace_text(copy / "pattern.toml", "port = 8100", "port = 8101")
    assert_reported(check_pattern_toml, copy, "pattern.toml says 8101")


def test_a_missing_persistent_volume_claim_is_reported(copy: Path) -> None:
    edit_model_db_yml(
        copy, lambda docs: docs.remove(named(docs, "PersistentVolumeClaim", "model-db-artifacts"))
    )
    assert_reported(check_manifest_references, copy, "PersistentVolumeClaim model-db-artifacts")


def test_a_missing_secret_is_reported(copy: Path) -> None:
    secret = {"name": "X", "valueFrom": {"secretKeyRef": {"name": "nowhere", "key": "X"}}}
    edit_model_db_yml(copy, lambda docs: api_container(docs)["env"].append(secret))
    assert_reported(check_manifest_references, copy, "Secret nowhere")


def test_a_missing_compose_volume_is_reported(copy: Path) -> None:
    edit_yaml(copy / COMPOSE_FILE, lambda docs: docs[0]["volumes"].pop("model_db_artifacts"))
    assert_reported(check_compose_references, copy, "volume model_db_artifacts")


def test_a_probe_path_that_is_no_route_is_reported(copy: Path) -> None:
    probe = {"httpGet": {"path": "/readyz", "port": 8100}}
    edit_model_db_yml(copy, lambda docs: api_container(docs).update(readinessProbe=probe))
    assert_reported(check_manifest_processes, copy, "path /readyz")


def test_a_compose_healthcheck_path_that_is_no_route_is_reported(copy: Path) -> None:
    replace_text(copy / COMPOSE_FILE, ":8100/ready'", ":8100/readyz'")
    assert_reported(check_compose_processes, copy, "healthcheck path /readyz")


def test_latest_tags_are_reported(copy: Path) -> None:
    edit_service(copy, "postgres", lambda service: service.update(image="postgres:latest"))
    assert_reported(check_image_tags, copy, "postgres:latest")
    dockerfile = copy / "Dockerfile"
    text = re.sub(r"^FROM \S+", "FROM python:latest", dockerfile.read_text(), flags=re.MULTILINE)
    dockerfile.write_text(text)
    assert_reported(partial(check_dockerfile, name="Dockerfile"), copy, "base image python:latest")


def test_an_image_tag_make_build_does_not_make_is_reported(copy: Path) -> None:
    tag = "ml-system-in-actions/model_db-api:9.9.9"
    edit_service(copy, "model_db", lambda service: service.update(image=tag))
    assert_reported(check_image_tags, copy, tag)


def test_a_loopback_setting_left_to_its_default_is_reported(copy: Path) -> None:
    edit_service(copy, "model_db", lambda service: service["environment"].pop("DATABASE_URL"))
    expected = "service model_db: environment must set DATABASE_URL"
    assert_reported(check_compose_processes, copy, expected)
    edit_model_db_yml(copy, lambda docs: pod_spec(docs)["initContainers"][0].pop("env"))
    assert_reported(check_manifest_processes, copy, "container migrate: env must set DATABASE_URL")


def test_a_job_that_restarts_is_reported(copy: Path) -> None:
    edit_service(copy, "migrate", lambda service: service.update(restart="on-failure"))
    assert_reported(check_compose_processes, copy, 'restart: "no"')


def test_an_init_container_running_no_job_command_is_reported(copy: Path) -> None:
    command = ["alembic", "upgrade", "+1"]
    edit_model_db_yml(
        copy, lambda docs: pod_spec(docs)["initContainers"][0].update(command=command)
    )
    assert_reported(check_manifest_processes, copy, "not a Procfile.jobs command")


def test_a_drifted_common_module_is_reported(copy: Path) -> None:
    modules = sorted((copy / "src" / "common").glob("*.py"))
    assert modules, "model_db has no src/common modules"
    modules[0].write_text(modules[0].read_text() + "# drift\n")
    assert_reported(partial(check_common, canonical=canonical_common()), copy, "differs from")


def test_a_drifted_image_preprocessing_module_is_reported(tmp_path: Path) -> None:
    canonical = tmp_path / "canonical" / "image_input.py"
    canonical.parent.mkdir()
    canonical.write_text("# the one path\n")
    pattern = tmp_path / "pattern"
    (pattern / "src" / "ml").mkdir(parents=True)
    copy = pattern / "src" / "ml" / "image_input.py"
    copy.write_bytes(canonical.read_bytes())
    assert check_image_input(pattern, canonical) == []
    copy.write_text("# the one path\n# drift\n")
    drifted = check_image_input(pattern, canonical)
    assert drifted == ["src/ml/image_input.py: differs from canonical"]


def test_a_drifted_or_missing_pred_file_is_reported(tmp_path: Path) -> None:
    canonical, pattern = tmp_path / "canonical", tmp_path / "pattern"
    for name in PRED_FILES:
        for root in (canonical, pattern):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(f"# {name}\n")
    assert check_pred_server(pattern, canonical) == []
    (pattern / "src/web.py").write_text("# drift\n")
    (pattern / "src/ml/model.py").unlink()
    assert check_pred_server(pattern, canonical) == [
        "src/ml/model.py: missing (canonical copy in canonical)",
        "src/web.py: differs from canonical/src/web.py",
    ]


def test_a_drifted_queue_file_is_reported(tmp_path: Path) -> None:
    canonical, pattern = tmp_path / "canonical", tmp_path / "pattern"
    for name in QUEUE_FILES:
        for root in (canonical, pattern):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(f"# {name}\n")
    assert check_queue(pattern, canonical) == []
    (pattern / "src/jobs/store.py").write_text("# drift\n")
    assert check_queue(pattern, canonical) == [
        "src/jobs/store.py: differs from canonical/src/jobs/store.py"
    ]


def test_requirements_drifting_from_the_lock_are_reported(copy: Path) -> None:
    path = copy / "requirements" / "serving.txt"
    text = re.sub(r"--hash=sha256:\w{4}", "--hash=sha256:0000", path.read_text(), count=1)
    path.write_text(text)
    check = partial(check_requirements, name="serving.txt")
    assert_reported(check, copy, "differs from Pipfile.lock")


def test_a_missing_copy_source_is_reported(copy: Path) -> None:
    (copy / "alembic.ini").unlink()
    assert_reported(check_copy_sources, copy, "COPY source alembic.ini")


def test_an_invalid_compose_key_is_reported(copy: Path) -> None:
    edit_service(copy, "model_db", lambda service: service.update(restart_policy="always"))
    assert_reported(check_compose_schema, copy, "compose specification")


def test_an_invalid_manifest_field_is_reported(copy: Path) -> None:
    edit_model_db_yml(copy, lambda docs: api_container(docs).update(restartPolcy="x"))
    assert_reported(check_manifest_schemas, copy, "restartPolcy")


def test_a_deprecated_api_version_is_reported(copy: Path) -> None:
    edit_model_db_yml(
        copy, lambda docs: named(docs, "Deployment", "model-db").update(apiVersion="apps/v1beta2")
    )
    assert_reported(check_manifest_schemas, copy, "apiVersion apps/v1beta2")


def test_procfile_variables_missing_from_compose_and_k8s_are_reported(copy: Path) -> None:
    replace_text(copy / "Procfile", "model_db: gunicorn", "model_db: WORKERS=1 gunicorn")
    assert_reported(check_compose_processes, copy, "environment needs WORKERS=1")
    assert_reported(check_manifest_processes, copy, "env needs WORKERS=1")


def test_a_container_without_resources_is_reported(copy: Path) -> None:
    edit_model_db_yml(copy, lambda docs: api_container(docs).pop("resources"))
    assert_reported(check_pod_hardening, copy, "container model-db: needs cpu and memory requests")


def test_a_copy_source_excluded_by_dockerignore_is_reported(copy: Path) -> None:
    with (copy / ".dockerignore").open("a") as ignore:
        ignore.write("alembic.ini\n")
    assert_reported(check_copy_sources, copy, "alembic.ini is excluded by .dockerignore")


def test_a_missing_k8s_stand_in_for_a_process_is_reported(copy: Path) -> None:
    # pattern.toml may name the object that runs a process in k8s instead of a Deployment
    # (a loop scheduled as a CronJob); that object must then be rendered
    replace_text(copy / "pattern.toml", "port = 8100", 'port = 8100\nk8s = "CronJob/nightly"')
    assert_reported(check_manifest_processes, copy, "no CronJob/nightly, which runs Procfile")


def test_a_launcher_readiness_path_that_is_no_route_is_reported(copy: Path) -> None:
    replace_text(copy / "pattern.toml", 'ready = "/ready"', 'ready = "/readyz"')
    assert_reported(check_pattern_toml, copy, "ready path /readyz is not a GET route")


# --- negative tests: a copy of model_load_pattern, whose Procfile runs chapter 2's model DB ------

MODEL_LOAD = REPO_ROOT / "chapter3_release_patterns" / "model_load_pattern"


@pytest.fixture
def model_load_copy(tmp_path: Path) -> Path:
    """A copy at the same depth, next to a link to chapter2_training: its `env --chdir=
    ../../chapter2_training/model_db` line still reaches the model DB pattern."""
    if not (MODEL_LOAD / "pattern.toml").is_file():
        pytest.skip("chapter3_release_patterns/model_load_pattern is not there yet")
    (tmp_path / "chapter2_training").symlink_to(REPO_ROOT / "chapter2_training")
    copy = tmp_path / "chapter3_release_patterns" / "model_load_pattern"
    ignore = shutil.ignore_patterns("var", "models", "__pycache__", ".*_cache")
    shutil.copytree(MODEL_LOAD, copy, ignore=ignore)
    return copy


def test_a_process_run_from_another_pattern_must_be_that_patterns_command(
    model_load_copy: Path,
) -> None:
    # the first create_app() of the Procfile is on the model_db line
    replace_text(model_load_copy / "Procfile", "create_app()", "make_app()")
    check = partial(assert_reported, broken=model_load_copy, original=MODEL_LOAD)
    check(check_pattern_toml, fragment="no Procfile line of chapter2_training/model_db")
    check(check_compose_processes, fragment="service model_db: runs")


def test_a_chdir_that_names_no_pattern_is_checked_as_this_patterns_process(
    model_load_copy: Path,
) -> None:
    # only a line that runs another pattern's process is exempt from a Deployment here
    replace_text(
        model_load_copy / "Procfile", "--chdir=../../chapter2_training/model_db", "--chdir=/tmp"
    )
    assert_reported(
        check_manifest_processes,
        model_load_copy,
        "no Deployment model-db with a container model-db",
        original=MODEL_LOAD,
    )


# --- negative tests: a copy of model_in_image_pattern, whose image tag carries the model -------

MODEL_IN_IMAGE = REPO_ROOT / "chapter3_release_patterns" / "model_in_image_pattern"


@pytest.fixture
def model_in_image_copy(tmp_path: Path) -> Path:
    """A copy with its models/ (the tag's model version is read from there)."""
    if not (MODEL_IN_IMAGE / "models" / "iris_svc" / "metadata.json").is_file():
        pytest.skip("chapter3_release_patterns/model_in_image_pattern has no model: make models")
    copy = tmp_path / "model_in_image_pattern"
    ignore = shutil.ignore_patterns("var", "__pycache__", ".*_cache")
    shutil.copytree(MODEL_IN_IMAGE, copy, ignore=ignore)
    return copy


def test_a_model_in_image_tag_without_the_model_version_is_reported(
    model_in_image_copy: Path,
) -> None:
    tag = "ml-system-in-actions/model_in_image_pattern-api:0.1.0"
    edit_service(model_in_image_copy, "api", lambda service: service.update(image=tag))
    check = partial(assert_reported, broken=model_in_image_copy, original=MODEL_IN_IMAGE)
    check(check_image_tags, fragment=f"image {tag} is not a tag `make build` makes")
    kustomization = model_in_image_copy / "manifests" / "kustomization.yml"
    text = re.sub(r"newTag: \S+", "newTag: 0.1.0", kustomization.read_text())
    kustomization.write_text(text)
    check(check_image_tags, fragment="container api: image " + tag)


def test_model_in_image_tags_without_the_model_they_name_are_reported(
    model_in_image_copy: Path,
) -> None:
    shutil.rmtree(model_in_image_copy / "models")
    assert_reported(
        check_image_tags,
        model_in_image_copy,
        "models/iris_svc/metadata.json holds no model version for the image tag",
        original=MODEL_IN_IMAGE,
    )
