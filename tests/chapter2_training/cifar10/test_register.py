"""cifar10: registration (SPEC 1.2 behaviour 8, as SPEC 1.1 acceptance test 6) into a real model
DB (SQLite, temp dir): the fake pipeline registers its models once in project `digits`; the
`register` step on the same files then creates nothing."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.chapter2_training.cifar10 import checks

API = "/v0.1/api"
NAMES = ["fake_resnet_small", "fake_resnet_small_int8"]


def registered(base_url: str) -> dict[str, dict[str, dict[str, str]]]:
    """{model name: {version: {artifact: sha256}}} of project `digits`."""
    found: dict[str, dict[str, dict[str, str]]] = {}
    with httpx.Client(base_url=base_url + API, timeout=10.0) as client:
        projects = client.get("/projects/all").json()
        assert [project["project_name"] for project in projects] == ["digits"]
        for model in client.get(f"/models/project-id/{projects[0]['project_id']}").json():
            versions = client.get(f"/models/{model['model_id']}/versions").json()
            found[model["model_name"]] = {
                str(version["version"]): {
                    item["filename"]: item["sha256"]
                    for item in client.get(
                        f"/models/{model['model_id']}/versions/{version['version']}/artifacts"
                    ).json()
                }
                for version in versions
            }
            resolved = client.get(f"/registry/digits/{model['model_name']}/staging")
            assert resolved.status_code == 200, resolved.text
    return found


def test_pipeline_registers_once_then_register_finds_them_unchanged(
    model_db: str, tmp_path: Path
) -> None:
    registry = {"MODEL_DB_URL": model_db, "MODEL_DB_TIMEOUT_S": "5"}
    models = tmp_path / "models"
    result = checks.run_cli(
        "src.pipeline",
        *("--dataset", "fake", "--variant", "small", "--epochs", "1", "--quantize"),
        *("--alias", "staging", "--output-dir", str(models), "--runs-dir", str(tmp_path / "runs")),
        env=registry,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for name in NAMES:
        assert f"{name}  registered as version 1 (project digits, alias staging)" in result.stdout
    expected = {
        name: {
            "1": {
                artifact: checks.sha256(models / name / artifact) for artifact in checks.ARTIFACTS
            }
        }
        for name in NAMES
    }
    assert registered(model_db) == expected

    again = checks.run_cli(
        "src.register", "--model-dir", str(models), "--alias", "staging", env=registry
    )
    assert again.returncode == 0, again.stderr
    for name in NAMES:
        assert f"{name}  unchanged: already registered as version 1" in again.stdout
    assert registered(model_db) == expected


def test_unreachable_registry_fails_after_publishing_the_model(tmp_path: Path) -> None:
    result = checks.run_cli(
        "src.pipeline",
        *("--dataset", "fake", "--variant", "small", "--epochs", "1"),
        *("--output-dir", str(tmp_path / "models"), "--runs-dir", str(tmp_path / "runs")),
        env={"MODEL_DB_URL": "http://127.0.0.1:9", "MODEL_DB_TIMEOUT_S": "1"},
    )
    assert result.returncode == 1
    assert "error: registration in the model DB at http://127.0.0.1:9 failed" in result.stderr
    checks.assert_model_directory(tmp_path / "models" / "fake_resnet_small")
