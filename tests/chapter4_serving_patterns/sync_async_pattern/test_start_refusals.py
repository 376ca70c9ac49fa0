"""Processes refuse what they cannot use before they serve anything, with one log line that says
why: the proxy without the quick model's directory (SYNC_MODEL_DIR), the worker with
inconsistent settings or without the heavy model's directory (exit status 2)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.chapter4_serving_patterns.sync_async_pattern.harness import PATTERN, PATTERN_DIR
from tests.support.launcher import base_environment
from tests.support.pattern import Pattern
from tests.support.ports import free_port

PROXY = ["gunicorn", "--config", "src/proxy/gunicorn.conf.py", "src.proxy.app:create_app()"]


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environment = base_environment(Pattern.load(PATTERN_DIR), env)
    return subprocess.run(
        command,
        cwd=PATTERN_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"QUEUE_BLOCK_MS": "3000", "REDIS_TIMEOUT_MS": "2000"}, "QUEUE_BLOCK_MS"),
        ({"MODEL_DIR": "/nonexistent/heavy"}, "/nonexistent/heavy"),
    ],
)
def test_the_worker_refuses_to_start(models: None, env: dict[str, str], reason: str) -> None:
    result = run([sys.executable, "-m", "src.worker"], {"WORKER_PORT": str(free_port()), **env})
    assert result.returncode == 2, f"{PATTERN}: {result.stdout}{result.stderr}"
    assert "refusing to start" in result.stdout + result.stderr
    assert reason in result.stdout + result.stderr


def test_the_proxy_refuses_to_start_without_the_quick_model(models: None) -> None:
    env = {"PROXY_PORT": str(free_port()), "SYNC_MODEL_DIR": "/nonexistent/quick"}
    result = run(PROXY, env)
    assert result.returncode != 0, f"{PATTERN}: {result.stdout}{result.stderr}"
    assert "refusing to start" in result.stdout + result.stderr
    assert "/nonexistent/quick" in result.stdout + result.stderr
