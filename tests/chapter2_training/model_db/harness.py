"""A running model registry for the end-to-end tests, and the few client calls they share.

Everything goes over HTTP to the real gunicorn process started by the launcher; expected
values come from the test's own inputs (names, bytes hashed with hashlib), never from the
service's code.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import envelope
from tests.support.launcher import RunningPattern, launch
from tests.support.services import PostgresServer

PATTERN = "chapter2_training/model_db"
API = "/v0.1/api"
BACKENDS = ("sqlite", "postgres")
MAX_ARTIFACT_BYTES = 64 * 1024  # small, so that the 413 tests send little
Json = dict[str, Any]


@dataclass
class Registry:
    running: RunningPattern
    client: httpx.Client
    sandbox: Path  # holds ARTIFACT_ROOT and nothing else: a write outside the root shows here
    artifact_root: Path
    database_url: str

    @property
    def url(self) -> str:
        return self.running.url()

    def post(self, path: str, body: Json, expected: int = 201) -> Json:
        response = self.client.post(API + path, json=body)
        assert response.status_code == expected, response.text
        created: Json = response.json()
        return created

    def project(self, name: str | None = None) -> Json:
        return self.post("/projects", {"project_name": name or unique("project")})

    def model(self, project_id: str, name: str | None = None) -> Json:
        body = {"project_id": project_id, "model_name": name or unique("model")}
        return self.post("/models", body)

    def experiment(self, model_id: str, **fields: Any) -> Json:
        return self.post("/experiments", {"model_id": model_id, "model_version_id": "v1", **fields})

    def version(self, model_id: str, **body: Any) -> Json:
        return self.post(f"/models/{model_id}/versions", body)

    def fresh_model(self) -> Json:
        return self.model(self.project()["project_id"])


def database_url(backend: str, tmp: Path, request: pytest.FixtureRequest) -> str:
    """A fresh, empty database of this backend (PostgreSQL: the run's shared server)."""
    if backend == "sqlite":
        (tmp / "db").mkdir(exist_ok=True)
        return f"sqlite:///{tmp / 'db' / 'registry.sqlite3'}"
    server = request.getfixturevalue("postgres_server")
    assert isinstance(server, PostgresServer)
    return server.create_database("model_db")


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@contextlib.contextmanager
def start_registry(database_url: str, tmp: Path, **env: str) -> Iterator[Registry]:
    sandbox = tmp / "sandbox"
    artifact_root = sandbox / "artifacts"
    settings = {
        "DATABASE_URL": database_url,
        "ARTIFACT_ROOT": str(artifact_root),
        "MAX_ARTIFACT_BYTES": str(MAX_ARTIFACT_BYTES),
        "DB_TIMEOUT_S": "5",
        **env,
    }
    with (
        launch(PATTERN, env=settings) as running,
        httpx.Client(base_url=running.url(), timeout=30.0) as client,
    ):
        yield Registry(running, client, sandbox, artifact_root, database_url)


def expect_error(response: httpx.Response, status: int, code: str) -> Json:
    """The SPEC 0.6 envelope with this status and code, and no other key."""
    return envelope.expect_error(response, status, code, envelope_only=True)


def all_pages(client: httpx.Client, path: str, limit: int = 50) -> list[Json]:
    """Every item of a list route, following `Link: <...>; rel="next"` until it stops."""
    items: list[Json] = []
    url: str | None = f"{API}{path}?limit={limit}"
    while url is not None:
        response = client.get(url)
        assert response.status_code == 200, response.text
        items.extend(response.json())
        next_link = response.links.get("next")
        url = next_link["url"] if next_link else None
    assert len(items) == int(response.headers["X-Total-Count"])
    return items


def simultaneously(count: int, action: Callable[[httpx.Client], httpx.Response]) -> list[int]:
    """Run `action` in `count` threads released together, each on its own connection (so
    both gunicorn workers take part); returns the status codes."""
    barrier = threading.Barrier(count)
    statuses: list[int] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def worker(client: httpx.Client) -> None:
        try:
            barrier.wait(timeout=30)
            status = action(client).status_code
        except BaseException as error:  # reported by the caller's assertion
            with lock:
                failures.append(error)
            return
        with lock:
            statuses.append(status)

    clients = [httpx.Client(timeout=30.0) for _ in range(count)]
    threads = [threading.Thread(target=worker, args=(client,)) for client in clients]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        for client in clients:
            client.close()
    assert not failures, failures
    return statuses
