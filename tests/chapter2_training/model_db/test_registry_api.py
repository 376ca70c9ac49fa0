"""SPEC 1.3 acceptance tests 1, 2, 3 and 6 on SQLite and PostgreSQL, through the real service;
plus the error envelope, X-Request-ID and the request counter across both gunicorn workers."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.chapter2_training.model_db.harness import (
    API,
    Json,
    Registry,
    all_pages,
    expect_error,
    simultaneously,
    unique,
)

UNKNOWN = "00000000-0000-4000-8000-000000000000"  # a well-formed UUID4 nobody created


# --- acceptance 1: create, then read by id, by name and through the book's list routes ----


def test_projects_are_read_back_by_id_name_and_list(registry: Registry) -> None:
    name = unique("iris")
    created = registry.post("/projects", {"project_name": name, "description": "the iris set"})
    assert created["project_name"] == name
    assert created["description"] == "the iris set"
    assert uuid.UUID(created["project_id"]).version == 4

    by_id = registry.client.get(f"{API}/projects/id/{created['project_id']}")
    by_name = registry.client.get(f"{API}/projects/name/{name}")
    assert by_id.status_code == by_name.status_code == 200
    assert by_id.json() == by_name.json() == created
    assert created in all_pages(registry.client, "/projects/all")


def test_models_are_read_back_by_id_project_and_name(registry: Registry) -> None:
    project = registry.project()
    other_project = registry.project()
    name = unique("iris_svc")
    model = registry.post(
        "/models",
        {"project_id": project["project_id"], "model_name": name, "description": "SVC"},
    )
    namesake = registry.model(other_project["project_id"], name)  # unique per project only
    assert (model["project_id"], model["model_name"]) == (project["project_id"], name)

    assert registry.client.get(f"{API}/models/id/{model['model_id']}").json() == model
    assert all_pages(registry.client, f"/models/project-id/{project['project_id']}") == [model]
    assert all_pages(registry.client, f"/models/project-name/{project['project_name']}") == [model]
    named = all_pages(registry.client, f"/models/name/{name}")
    assert sorted(named, key=lambda item: item["model_id"]) == sorted(
        [model, namesake], key=lambda item: item["model_id"]
    )
    assert model in all_pages(registry.client, "/models/all")


def test_experiments_are_read_back_by_every_route(registry: Registry) -> None:
    project = registry.project()
    model = registry.model(project["project_id"])
    label = unique("v")
    body: Json = {
        "model_id": model["model_id"],
        "model_version_id": label,
        "parameters": {"C": 1.0, "kernel": "rbf"},
        "training_dataset": "iris train split",
        "validation_dataset": None,
        "test_dataset": "iris test split",
        "evaluations": {"accuracy": 0.97},
        "artifact_file_paths": {"model": "model.onnx"},
    }
    experiment = registry.post("/experiments", body)
    assert {key: experiment[key] for key in body} == body
    experiment_id = experiment["experiment_id"]

    assert registry.client.get(f"{API}/experiments/id/{experiment_id}").json() == experiment
    for path in (
        f"/experiments/model-id/{model['model_id']}",
        f"/experiments/project-id/{project['project_id']}",
        f"/experiments/model-version-id/{label}",
    ):
        assert all_pages(registry.client, path) == [experiment], path
    assert experiment in all_pages(registry.client, "/experiments/all")


def test_optional_json_fields_default_to_empty_objects(registry: Registry) -> None:
    experiment = registry.experiment(registry.fresh_model()["model_id"])
    assert experiment["parameters"] == experiment["evaluations"] == {}
    assert experiment["artifact_file_paths"] == {}
    assert experiment["training_dataset"] is None


def test_timestamps_are_utc_iso8601(registry: Registry) -> None:
    before = datetime.now(UTC)
    project = registry.project()
    stamp = datetime.fromisoformat(project["created_datetime"])
    assert stamp.utcoffset() == timedelta(0)
    assert before - timedelta(minutes=1) < stamp < datetime.now(UTC) + timedelta(minutes=1)


# --- acceptance 2: merges are shallow, later values win, and they persist ------------------


@pytest.mark.parametrize("field", ["evaluations", "artifact_file_paths"])
def test_merges_persist_the_union_with_later_values_winning(registry: Registry, field: str) -> None:
    route = {"evaluations": "evaluations", "artifact_file_paths": "artifact-file-paths"}[field]
    experiment = registry.experiment(
        registry.fresh_model()["model_id"], **{field: {"a": 1, "nested": {"x": 1}}}
    )
    path = f"{API}/experiments/{route}/{experiment['experiment_id']}"

    first = registry.client.post(path, json={field: {"b": 2, "nested": {"y": 2}}})
    second = registry.client.post(path, json={field: {"a": 10, "c": 3}})
    assert first.status_code == second.status_code == 200

    expected = {"a": 10, "b": 2, "c": 3, "nested": {"y": 2}}  # shallow: "nested" replaced
    assert second.json()[field] == expected
    with httpx.Client(base_url=registry.url) as fresh:  # a new connection, maybe another worker
        stored = fresh.get(f"{API}/experiments/id/{experiment['experiment_id']}").json()
    assert stored[field] == expected
    other = {"evaluations": "artifact_file_paths", "artifact_file_paths": "evaluations"}[field]
    assert stored[other] == experiment[other]


# --- acceptance 3: exact errors ----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/projects/id/{id}"),
        ("GET", "/models/id/{id}"),
        ("GET", "/models/project-id/{id}"),
        ("GET", "/experiments/id/{id}"),
        ("GET", "/experiments/model-id/{id}"),
        ("GET", "/experiments/project-id/{id}"),
        ("POST", "/experiments/evaluations/{id}"),
        ("POST", "/experiments/artifact-file-paths/{id}"),
        ("POST", "/models/{id}/versions"),
        ("GET", "/models/{id}/versions"),
        ("GET", "/models/{id}/versions/1"),
        ("GET", "/models/{id}/versions/1/artifacts"),
        ("GET", "/models/{id}/versions/1/artifacts/model.onnx"),
        ("PUT", "/models/{id}/versions/1/artifacts/model.onnx"),
        ("GET", "/models/{id}/aliases"),
        ("PUT", "/models/{id}/aliases/production"),
        ("DELETE", "/models/{id}/aliases/production"),
    ],
)
def test_unknown_ids_in_paths_are_404(registry: Registry, method: str, path: str) -> None:
    bodies = {
        "/experiments/evaluations/{id}": {"evaluations": {"a": 1}},
        "/experiments/artifact-file-paths/{id}": {"artifact_file_paths": {"a": "b"}},
        "/models/{id}/versions": {},
        "/models/{id}/aliases/production": {"version": 1},
    }
    kwargs: Json = {"json": bodies[path]} if path in bodies else {}
    if method == "PUT" and "artifacts" in path:
        kwargs = {"content": b"bytes"}
    response = registry.client.request(method, API + path.format(id=UNKNOWN), **kwargs)
    body = expect_error(response, 404, "not_found")
    assert UNKNOWN in body["error"]


@pytest.mark.parametrize(
    "path",
    [
        "/projects/name/{name}",
        "/models/name/{name}",
        "/models/project-name/{name}",
        "/experiments/model-version-id/{name}",
    ],
)
def test_unknown_names_are_404(registry: Registry, path: str) -> None:
    name = unique("missing")
    body = expect_error(registry.client.get(API + path.format(name=name)), 404, "not_found")
    assert name in body["error"]


def test_unknown_version_and_alias_of_a_known_model_are_404(registry: Registry) -> None:
    model_id = registry.fresh_model()["model_id"]
    registry.version(model_id)
    for method, path, body in (
        ("GET", f"/models/{model_id}/versions/2", None),
        ("GET", f"/models/{model_id}/versions/2/artifacts", None),
        ("GET", f"/models/{model_id}/versions/1/artifacts/model.onnx", None),
        ("PUT", f"/models/{model_id}/aliases/production", {"version": 2}),
        ("DELETE", f"/models/{model_id}/aliases/production", None),
    ):
        expect_error(registry.client.request(method, API + path, json=body), 404, "not_found")


def test_malformed_uuid_in_a_path_is_422(registry: Registry) -> None:
    body = expect_error(registry.client.get(f"{API}/projects/id/not-a-uuid"), 422, "invalid_input")
    assert body["details"][0]["loc"] == ["path", "project_id"]


def test_duplicate_project_name_is_409(registry: Registry) -> None:
    name = unique("dup")
    registry.project(name)
    response = registry.client.post(f"{API}/projects", json={"project_name": name})
    assert name in expect_error(response, 409, "conflict")["error"]


def test_duplicate_model_name_in_one_project_is_409(registry: Registry) -> None:
    project_id = registry.project()["project_id"]
    name = unique("dup_model")
    registry.model(project_id, name)
    response = registry.client.post(
        f"{API}/models", json={"project_id": project_id, "model_name": name}
    )
    expect_error(response, 409, "conflict")


def test_concurrent_creations_of_one_project_name_give_one_201(registry: Registry) -> None:
    name = unique("race")
    url = f"{registry.url}{API}/projects"
    statuses = simultaneously(8, lambda client: client.post(url, json={"project_name": name}))
    assert sorted(statuses) == [201] + [409] * 7
    assert registry.client.get(f"{API}/projects/name/{name}").status_code == 200


def test_concurrent_creations_of_one_model_name_give_one_201(registry: Registry) -> None:
    project_id = registry.project()["project_id"]
    body = {"project_id": project_id, "model_name": unique("race_model")}
    url = f"{registry.url}{API}/models"
    statuses = simultaneously(8, lambda client: client.post(url, json=body))
    assert sorted(statuses) == [201] + [409] * 7
    assert len(all_pages(registry.client, f"/models/project-id/{project_id}")) == 1


def test_unknown_references_in_bodies_are_422(registry: Registry) -> None:
    model_id = registry.fresh_model()["model_id"]
    other_experiment = registry.experiment(registry.fresh_model()["model_id"])
    for path, body in (
        ("/models", {"project_id": UNKNOWN, "model_name": unique("m")}),
        ("/experiments", {"model_id": UNKNOWN, "model_version_id": "v1"}),
        (f"/models/{model_id}/versions", {"experiment_id": UNKNOWN}),
        # an experiment of another model is no reference for this model's version
        (f"/models/{model_id}/versions", {"experiment_id": other_experiment["experiment_id"]}),
    ):
        response = registry.client.post(API + path, json=body)
        expect_error(response, 422, "invalid_input")
    # the refused version took no number
    assert registry.version(model_id)["version"] == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"project_name": ""},
        {"project_name": "has/slash"},
        {"project_name": "x" * 129},
        {"project_name": 7},
        {"project_name": "ok", "unknown_field": 1},
    ],
)
def test_invalid_project_bodies_are_422_with_details(registry: Registry, body: Json) -> None:
    response = registry.client.post(f"{API}/projects", json=body)
    details = expect_error(response, 422, "invalid_input")["details"]
    assert details
    assert all(set(item) == {"loc", "msg"} and item["loc"][0] == "body" for item in details)


@pytest.mark.parametrize(
    "alias", ["Production", "1st", "a" * 33, "prod.uction", "with%20space", "_x", "-x"]
)
def test_bad_alias_names_are_422(registry: Registry, alias: str) -> None:
    model_id = registry.fresh_model()["model_id"]
    registry.version(model_id)
    response = registry.client.put(f"{API}/models/{model_id}/aliases/{alias}", json={"version": 1})
    expect_error(response, 422, "invalid_input")
    assert registry.client.get(f"{API}/models/{model_id}/aliases").json() == {}


# --- acceptance 6: versions and aliases ------------------------------------------------------


def test_versions_aliases_and_resolution_by_name(registry: Registry) -> None:
    project_name = unique("iris")
    project = registry.project(project_name)
    model = registry.model(project["project_id"], "iris_svc")
    model_id = model["model_id"]
    experiment = registry.experiment(model_id, evaluations={"accuracy": 0.97})

    created = [
        registry.version(model_id, experiment_id=experiment["experiment_id"], metadata={"n": n})
        for n in (1, 2, 3)
    ]
    assert [version["version"] for version in created] == [1, 2, 3]
    assert all(version["aliases"] == version["artifacts"] == [] for version in created)
    assert created[1]["metadata"] == {"n": 2}
    assert created[0]["experiment_id"] == experiment["experiment_id"]
    assert all_pages(registry.client, f"/models/{model_id}/versions") == created

    aliases = f"{API}/models/{model_id}/aliases"
    assert registry.client.put(f"{aliases}/production", json={"version": 1}).status_code == 200
    assert registry.client.get(aliases).json() == {"production": 1}
    moved = registry.client.put(f"{aliases}/production", json={"version": 3})
    assert moved.status_code == 200
    assert moved.json() == {"model_id": model_id, "alias": "production", "version": 3}
    assert registry.client.get(aliases).json() == {"production": 3}
    version_3 = registry.client.get(f"{API}/models/{model_id}/versions/3").json()
    assert version_3["aliases"] == ["production"]

    registry_path = f"{API}/registry/{project_name}/iris_svc"
    resolved = registry.client.get(f"{registry_path}/production").json()
    assert (resolved["version"], resolved["model_id"], resolved["ref"]) == (
        3,
        model_id,
        "production",
    )
    assert resolved["project_name"] == project_name
    assert registry.client.get(f"{registry_path}/2").json()["version"] == 2

    assert registry.client.delete(f"{aliases}/production").status_code == 204
    assert registry.client.get(aliases).json() == {}
    gone = expect_error(registry.client.get(f"{registry_path}/production"), 404, "not_found")
    assert "production" in gone["error"]


def test_registry_404_names_what_is_missing(registry: Registry) -> None:
    project = registry.project()
    model = registry.model(project["project_id"])
    registry.version(model["model_id"])
    name, model_name = project["project_name"], model["model_name"]
    for path, missing in (
        (f"/registry/no_such_project/{model_name}/1", "no_such_project"),
        (f"/registry/{name}/no_such_model/1", "no_such_model"),
        (f"/registry/{name}/{model_name}/staging", "staging"),
        (f"/registry/{name}/{model_name}/7", "7"),
        (f"/registry/{name}/{model_name}/99999999999", "99999999999"),
    ):
        body = expect_error(registry.client.get(API + path), 404, "not_found")
        assert missing in body["error"], body


def test_concurrent_version_creation_numbers_1_to_n(registry: Registry) -> None:
    model_id = registry.fresh_model()["model_id"]
    url = f"{registry.url}{API}/models/{model_id}/versions"
    statuses = simultaneously(10, lambda client: client.post(url, json={}))
    assert statuses == [201] * 10
    versions = all_pages(registry.client, f"/models/{model_id}/versions")
    assert [version["version"] for version in versions] == list(range(1, 11))


# --- the error envelope and X-Request-ID ----------------------------------------------------


def test_error_envelope_for_routing_and_body_errors(registry: Registry) -> None:
    client = registry.client
    expect_error(client.get("/no/such/route"), 404, "not_found")
    not_allowed = client.delete(f"{API}/projects/all")
    expect_error(not_allowed, 405, "method_not_allowed")
    assert "GET" in not_allowed.headers["Allow"]
    malformed = client.post(
        f"{API}/projects",
        content=b'{"project_name": ',
        headers={"Content-Type": "application/json"},
    )
    expect_error(malformed, 422, "invalid_input")
    for headers in (
        {"Content-Type": "text/plain"},
        {"Content-Type": "application/x-www-form-urlencoded"},
    ):
        wrong_type = client.post(f"{API}/projects", content=b"project_name=x", headers=headers)
        expect_error(wrong_type, 415, "unsupported_media_type")
    expect_error(client.get(f"{API}/projects/all?limit=501"), 422, "invalid_input")
    expect_error(client.get(f"{API}/projects/all?offset=-1"), 422, "invalid_input")


def test_request_id_is_echoed_or_generated(registry: Registry) -> None:
    given = registry.client.get("/v0.1/health", headers={"X-Request-ID": "trace-42.a:b"})
    assert given.headers["X-Request-ID"] == "trace-42.a:b"
    error = registry.client.get(f"{API}/projects/id/{UNKNOWN}", headers={"X-Request-ID": "mine-1"})
    assert expect_error(error, 404, "not_found")["request_id"] == "mine-1"
    for unsafe in ("x" * 129, "<script>", "a b"):
        replaced = registry.client.get("/health", headers={"X-Request-ID": unsafe})
        assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["X-Request-ID"])
    generated = {registry.client.get("/health").headers["X-Request-ID"] for _ in range(3)}
    assert len(generated) == 3


def test_health_routes_are_constant_and_ready_is_200(registry: Registry) -> None:
    assert registry.client.get("/health").json() == {"health": "ok"}
    assert registry.client.get("/v0.1/health").json() == {"health": "ok"}
    assert registry.client.get("/ready").status_code == 200


# --- /metrics counts every request, whichever worker served it ------------------------------


def health_count(registry: Registry) -> float:
    text = registry.client.get("/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "http_requests_total"
                and labels.get("route") == "/v0.1/health"
                and labels.get("method") == "GET"
                and labels.get("status") == "200"
            ):
                return sample.value
    return 0.0


def test_metrics_count_requests_across_workers(registry: Registry) -> None:
    before = health_count(registry)
    sent = 40
    for _ in range(sent):
        # a new connection each time: the kernel spreads them over both workers
        assert httpx.get(f"{registry.url}/v0.1/health").status_code == 200
    assert health_count(registry) == before + sent


# --- the OpenAPI document against the service: generated requests, bounded --------------------


def test_generated_requests_get_documented_answers_and_no_5xx(
    registry: Registry, tmp_path: Path
) -> None:
    """Schemathesis: no 5xx, and every status, content type and body matches the OpenAPI
    document. Two checks are left out: `positive_data_acceptance` (a schema-valid body may
    name an id that does not exist: 422 by SPEC 1.3) and `allow_header_conformance`
    (Starlette's 405 lists only the methods of the first route that matched the path)."""
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{registry.url}/openapi.json",
        "--checks=all",
        "--exclude-checks=positive_data_acceptance,allow_header_conformance",
        "--phases=examples,coverage,fuzzing",
        "--max-examples=8",
        "--seed=20261126",
        "--generation-database=none",
        "--request-timeout=10",
        "--no-color",
    ]
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=240, check=False
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_openapi_pages_load_nothing_from_outside(registry: Registry) -> None:
    """SPEC: nothing downloads at run time, the /docs page's scripts included."""
    page = registry.client.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(asset.startswith("/") for asset in assets), assets
    for asset in assets:
        assert registry.client.get(asset).status_code == 200, asset
