"""Settings (SPEC 0.7): every Procfile process listens on the port setting named after it,
whose default is the port pattern.toml declares; no setting reads honcho's bare PORT; the
backend list is explicit and checked at start."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from src.configurations import ProxySettings, ServiceSettings, Settings
from tests.chapter4_serving_patterns.horizontal_microservice_pattern.harness import PATTERN_DIR
from tests.support.pattern import Pattern

PROCESSES = Pattern.load(PATTERN_DIR).processes


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets: no variable of this shell or of a launch reaches the settings."""
    for field in {*ProxySettings.model_fields, *ServiceSettings.model_fields}:
        monkeypatch.delenv(field.upper(), raising=False)


@pytest.mark.parametrize("name", list(PROCESSES))
def test_each_process_listens_on_the_port_named_after_it(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    command = PROCESSES[name]
    for key, value in command.env.items():  # the Procfile line's own VAR=value pairs
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PORT", "5000")  # honcho's, for every process: never read
    settings = Settings()
    assert settings.process_name == name
    assert settings.port == Pattern.load(PATTERN_DIR).default_ports[name]
    monkeypatch.setenv(command.port_variable, "12345")  # what the launcher sets
    assert Settings().port == 12345


def test_the_backend_list_is_explicit_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVICES", "virginica, setosa")
    monkeypatch.setenv("SERVICE_VIRGINICA_URL", "http://service_virginica:8002/")
    assert ProxySettings().backend_urls() == {
        "virginica": "http://service_virginica:8002",
        "setosa": "http://127.0.0.1:8000",
    }
    for wrong in ("setosa,setosa", "setosa,unknown", ""):
        monkeypatch.setenv("SERVICES", wrong)
        with pytest.raises(ValidationError):
            ProxySettings()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SERVICE_NAME", "iris"),
        ("BACKEND_TIMEOUT_MS", "0"),
        ("SERVICE_SETOSA_URL", "service_setosa:8000"),
        ("PROXY_PORT", "70000"),
    ],
)
def test_bad_values_fail_at_start(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError):
        ProxySettings()
