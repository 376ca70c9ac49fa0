"""SPEC 1.3 behaviour 7 as fault drills: /ready follows the database (a private PostgreSQL
stopped and started again) and the artifact root, without restarting the service."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from tests.chapter2_training.model_db.harness import API, Registry, expect_error, start_registry
from tests.support.ports import wait_until
from tests.support.services import PostgresServer

DEADLINE_S = 30.0


def ready_status(registry: Registry) -> int:
    return registry.client.get("/ready").status_code


def assert_same_processes(registry: Registry, pids: dict[str, int]) -> None:
    assert {name: process.pid for name, process in registry.running.processes.items()} == pids
    assert all(process.alive() for process in registry.running.processes.values())


def test_ready_follows_postgresql(
    private_postgres: Callable[[], PostgresServer], tmp_path: Path
) -> None:
    server = private_postgres()
    with start_registry(server.create_database("model_db"), tmp_path) as registry:
        pids = {name: process.pid for name, process in registry.running.processes.items()}
        assert ready_status(registry) == 200

        server.stop()
        wait_until(lambda: ready_status(registry) == 503, timeout_s=DEADLINE_S, what="/ready 503")
        response = registry.client.get("/ready")
        body = expect_error(response, 503, "dependency_unavailable")
        assert [item["loc"] for item in body["details"]] == [["database"]]
        assert "database" in body["error"] and body["details"][0]["msg"]  # the reason
        assert int(response.headers["Retry-After"]) >= 1
        # A data route says the same instead of a 500; liveness stays constant.
        expect_error(registry.client.get(f"{API}/projects/all"), 503, "dependency_unavailable")
        assert registry.client.get("/health").status_code == 200

        server.start()
        wait_until(lambda: ready_status(registry) == 200, timeout_s=DEADLINE_S, what="/ready 200")
        created = registry.client.post(f"{API}/projects", json={"project_name": "after_restart"})
        assert created.status_code == 201
        assert_same_processes(registry, pids)


WORKERS = 2  # the settings default the harness keeps


def every_worker_started(registry: Registry) -> bool:
    log = registry.running.processes["model_db"].log_text()
    return log.count('"message": "model_db started"') >= WORKERS


def test_ready_follows_the_artifact_root(tmp_path: Path) -> None:
    (tmp_path / "db").mkdir()
    with start_registry(f"sqlite:///{tmp_path / 'db' / 'registry.sqlite3'}", tmp_path) as registry:
        pids = {name: process.pid for name, process in registry.running.processes.items()}
        assert ready_status(registry) == 200
        # /ready answered from one worker; the other may still be in its lifespan, creating
        # the root's incoming/ directory while the test removes the root.
        wait_until(
            lambda: every_worker_started(registry), timeout_s=DEADLINE_S, what="both workers"
        )

        # The root replaced by a plain file: nothing can be written under it.
        shutil.rmtree(registry.artifact_root)
        registry.artifact_root.write_text("not a directory")
        body = expect_error(registry.client.get("/ready"), 503, "dependency_unavailable")
        assert [item["loc"] for item in body["details"]] == [["artifact_root"]]
        assert str(registry.artifact_root) in body["error"]

        registry.artifact_root.unlink()
        registry.artifact_root.mkdir()
        assert ready_status(registry) == 200
        assert_same_processes(registry, pids)
