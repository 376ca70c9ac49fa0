"""The loader (SPEC 2.2 behaviour 1-2, acceptance test 3 and 4): `python -m src.loader --source
... --dest ...` against a real model DB, a model directory and a local http server; exit codes
0 loaded, 2 not found, 3 checksum mismatch, 4 unreachable."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.chapter3_release_patterns.model_load_pattern.conftest import Registry
from tests.chapter3_release_patterns.model_load_pattern.harness import (
    EXIT_LOADED,
    EXIT_MISMATCH,
    EXIT_NOT_FOUND,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    FILES,
    holds,
    http_directory,
    run_loader,
    tampered,
    v1,
    v2,
)
from tests.support.ports import free_port

PRODUCTION = "modeldb://iris/iris_svc@production"


def last_log(output: str) -> dict[str, object]:
    """The loader's closing JSON log line."""
    line = [line for line in output.splitlines() if line.startswith("{")][-1]
    value: dict[str, object] = json.loads(line)
    return value


def test_the_loader_line_installs_the_production_version(
    registry: Registry, tmp_path: Path
) -> None:
    dest = tmp_path / "model"
    result = run_loader(PRODUCTION, dest, {"MODEL_DB_URL": registry.url})
    assert result.returncode == EXIT_LOADED, result.stdout + result.stderr
    assert holds(dest, v1())
    record = json.loads((dest / "source.json").read_text())
    assert record["uri"] == PRODUCTION
    assert record["version"] == 1
    assert record["sha256"] == v1().sha256
    # staged inside the destination, renamed into place: nothing is left behind
    assert sorted(path.name for path in dest.iterdir()) == sorted([*FILES, "source.json"])


def test_a_second_run_finds_the_model_in_place(registry: Registry, tmp_path: Path) -> None:
    dest = tmp_path / "model"
    assert run_loader(PRODUCTION, dest, {"MODEL_DB_URL": registry.url}).returncode == EXIT_LOADED
    written = (dest / "model.onnx").stat().st_mtime_ns
    again = run_loader(PRODUCTION, dest, {"MODEL_DB_URL": registry.url})
    assert again.returncode == EXIT_LOADED
    assert last_log(again.stdout)["changed"] is False
    assert (dest / "model.onnx").stat().st_mtime_ns == written


def test_a_version_number_and_another_alias_replace_the_directory(
    registry: Registry, tmp_path: Path
) -> None:
    dest = tmp_path / "model"
    env = {"MODEL_DB_URL": registry.url}
    assert run_loader("modeldb://iris/iris_svc/1", dest, env).returncode == EXIT_LOADED
    assert holds(dest, v1())
    assert run_loader("modeldb://iris/iris_svc@staging", dest, env).returncode == EXIT_LOADED
    assert holds(dest, v2())
    assert json.loads((dest / "source.json").read_text())["version"] == 2


@pytest.mark.parametrize(
    ("source", "missing"),
    [
        ("modeldb://iris/iris_svc@canary", "alias canary"),
        ("modeldb://iris/iris_svc/9", "version 9"),
        ("modeldb://iris/iris_rf@production", "alias production"),
        ("modeldb://flowers/iris_svc@production", "alias production"),
    ],
)
def test_what_the_registry_lacks_exits_2_naming_it(
    registry: Registry, tmp_path: Path, source: str, missing: str
) -> None:
    result = run_loader(source, tmp_path / "model", {"MODEL_DB_URL": registry.url})
    assert result.returncode == EXIT_NOT_FOUND, result.stdout + result.stderr
    log = last_log(result.stdout)
    assert log["reason"] == "not_found"
    assert f"{missing} not found" in str(log["message"])
    assert not (tmp_path / "model" / "model.onnx").exists()


def test_an_unreachable_model_db_exits_4_after_its_retries(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    result = run_loader(PRODUCTION, tmp_path / "model", {"MODEL_DB_URL": closed})
    assert result.returncode == EXIT_UNREACHABLE, result.stdout + result.stderr
    assert "2 attempts" in str(last_log(result.stdout)["message"])  # FETCH_RETRIES=1


def test_a_tampered_stored_artifact_exits_3_and_keeps_the_installed_model(
    registry: Registry, tmp_path: Path
) -> None:
    dest = tmp_path / "model"
    env = {"MODEL_DB_URL": registry.url}
    assert run_loader("modeldb://iris/iris_svc/1", dest, env).returncode == EXIT_LOADED
    with tampered(registry.artifact_root, registry.url, version=2):
        result = run_loader("modeldb://iris/iris_svc@staging", dest, env)
    assert result.returncode == EXIT_MISMATCH, result.stdout + result.stderr
    assert "the model DB lists" in str(last_log(result.stdout)["message"])
    assert holds(dest, v1())  # the previous model, untouched
    assert sorted(path.name for path in dest.iterdir()) == sorted([*FILES, "source.json"])


def test_a_model_directory_loads_from_file_url(tmp_path: Path) -> None:
    dest = tmp_path / "model"
    result = run_loader(f"file://{v2().directory}", dest)
    assert result.returncode == EXIT_LOADED, result.stdout + result.stderr
    assert holds(dest, v2())
    pinned = run_loader(f"file://{v1().directory}/model.onnx", dest, {"MODEL_SHA256": v1().sha256})
    assert pinned.returncode == EXIT_LOADED, pinned.stdout + pinned.stderr
    assert holds(dest, v1())


def test_a_wrong_model_sha256_for_a_file_source_exits_3(tmp_path: Path) -> None:
    dest = tmp_path / "model"
    result = run_loader(f"file://{v1().directory}", dest, {"MODEL_SHA256": v2().sha256})
    assert result.returncode == EXIT_MISMATCH, result.stdout + result.stderr
    assert "MODEL_SHA256" in str(last_log(result.stdout)["message"])
    assert not dest.joinpath("model.onnx").exists()


def test_a_model_that_contradicts_its_metadata_exits_3(tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(v1().directory, source)
    shutil.copy(v2().directory / "model.onnx", source / "model.onnx")
    result = run_loader(f"file://{source}", tmp_path / "model")
    assert result.returncode == EXIT_MISMATCH, result.stdout + result.stderr
    assert "metadata.json says" in str(last_log(result.stdout)["message"])


def test_a_missing_directory_exits_2(tmp_path: Path) -> None:
    result = run_loader(f"file://{tmp_path}/nowhere", tmp_path / "model")
    assert result.returncode == EXIT_NOT_FOUND, result.stdout + result.stderr


def test_an_http_source_loads_and_is_verified(tmp_path: Path) -> None:
    served = tmp_path / "served" / "iris"
    shutil.copytree(v2().directory, served)
    dest = tmp_path / "model"
    with http_directory(tmp_path / "served") as base:
        loaded = run_loader(f"{base}/iris/model.onnx", dest)
        assert loaded.returncode == EXIT_LOADED, loaded.stdout + loaded.stderr
        assert holds(dest, v2())
        wrong = run_loader(
            f"{base}/iris/model.onnx", tmp_path / "other", {"MODEL_SHA256": "0" * 64}
        )
        assert wrong.returncode == EXIT_MISMATCH
        missing = run_loader(f"{base}/elsewhere/model.onnx", tmp_path / "other")
        assert missing.returncode == EXIT_NOT_FOUND
        shutil.copy(v1().directory / "model.onnx", served / "model.onnx")  # metadata says v2
        corrupt = run_loader(f"{base}/iris/model.onnx", tmp_path / "third")
        assert corrupt.returncode == EXIT_MISMATCH
        assert not (tmp_path / "third" / "model.onnx").exists()


@pytest.mark.parametrize(
    "source",
    ["iris/iris_svc@production", "modeldb://iris/iris_svc", "file://relative/dir", "ftp://x/y"],
)
def test_a_string_that_is_no_source_is_a_usage_error(tmp_path: Path, source: str) -> None:
    result = run_loader(source, tmp_path / "model")
    assert result.returncode == EXIT_USAGE, result.stdout + result.stderr
