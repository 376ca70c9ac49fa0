"""The worker refuses what it cannot use before it serves anything (exit status 2, one log
line that says why): inconsistent settings, a model directory it cannot read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.chapter4_serving_patterns.asynchronous_pattern.harness import PATTERN, PATTERN_DIR
from tests.support.launcher import base_environment
from tests.support.pattern import Pattern
from tests.support.ports import free_port


def run_worker(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environment = base_environment(Pattern.load(PATTERN_DIR), env)
    return subprocess.run(
        [sys.executable, "-m", "src.worker"],
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
        ({"WORKER_CONCURRENCY": "0"}, "worker_concurrency"),
        ({"MODEL_DIR": "/nonexistent/model"}, "/nonexistent/model"),
    ],
)
def test_the_worker_refuses_to_start(digits_dir: Path, env: dict[str, str], reason: str) -> None:
    result = run_worker({"WORKER_PORT": str(free_port()), **env})
    assert result.returncode == 2, f"{PATTERN}: {result.stdout}{result.stderr}"
    assert "refusing to start" in result.stdout + result.stderr
    assert reason in result.stdout + result.stderr
