"""Settings fail fast and default to local paths; importing and building the app touches nothing
(CONVENTIONS 2: nothing at import time, connections only in the lifespan)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from src.app.app import create_app
from src.configurations import Settings
from tests.chapter2_training.model_db.harness import PATTERN
from tests.support.pattern import REPO_ROOT, Pattern

SETTINGS_ENV = (
    "HOST", "MODEL_DB_PORT", "WORKERS", "DATABASE_URL", "ARTIFACT_ROOT",
    "MAX_ARTIFACT_BYTES", "DB_TIMEOUT_S", "LOG_LEVEL",
)  # fmt: skip


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)


def test_defaults_work_for_a_local_process() -> None:
    settings = Settings()
    pattern_dir = REPO_ROOT / PATTERN
    assert (settings.host, settings.workers, settings.db_timeout_s) == ("127.0.0.1", 2, 5.0)
    assert settings.model_db_port == Pattern.load(pattern_dir).default_ports["model_db"] == 8100
    assert settings.database_url == f"sqlite:///{pattern_dir / 'var' / 'model_db.sqlite3'}"
    assert settings.artifact_root == pattern_dir / "var" / "artifacts"
    assert settings.max_artifact_bytes == 512 * 1024 * 1024


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MODEL_DB_PORT", "9100")
    monkeypatch.setenv("ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    monkeypatch.setenv("LOG_LEVEL", "debug")
    settings = Settings()
    assert (settings.model_db_port, settings.log_level) == (9100, "DEBUG")
    assert settings.artifact_root == tmp_path / "artifacts"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MODEL_DB_PORT", "0"),
        ("MODEL_DB_PORT", "http"),
        ("WORKERS", "0"),
        ("DATABASE_URL", "mysql://root@localhost/model_db"),
        ("DATABASE_URL", "not a url"),
        ("MAX_ARTIFACT_BYTES", "-1"),
        ("DB_TIMEOUT_S", "0"),
        ("LOG_LEVEL", "chatty"),
    ],
)
def test_bad_values_fail_at_start(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=name.lower()):
        Settings()


def test_building_the_app_opens_nothing(tmp_path: Path) -> None:
    """The database and the artifact root are first touched by the lifespan, not the factory."""
    missing = tmp_path / "nowhere"
    settings = Settings(
        database_url=f"sqlite:///{missing / 'registry.sqlite3'}",
        artifact_root=missing / "artifacts",
    )
    app = create_app(settings)
    assert not missing.exists()
    assert app.url_path_for("download_artifact", model_id="m", version="1", filename="f.onnx") == (
        "/v0.1/api/models/m/versions/1/artifacts/f.onnx"
    )
