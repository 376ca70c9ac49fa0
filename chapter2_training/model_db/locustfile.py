"""The load `make bench` sends to the registry: what serving patterns do at start and reload.

Model loaders resolve an alias and download artifacts far more often than trainers write, so
the mix is read-heavy. The first user registers one model version with an artifact and the
alias `production` (idempotently: a 409 means it is already there).
"""

from __future__ import annotations

import hashlib

from locust import HttpUser, constant, task

API = "/v0.1/api"
PROJECT, MODEL, ALIAS = "bench", "bench_model", "production"
ARTIFACT = b"\x00" * 64 * 1024  # a small model-sized file
state: dict[str, str] = {}  # per locust process: one run each


def fetch_or_create(user: HttpUser, create: str, body: dict[str, str], lookup: str) -> str:
    with user.client.post(create, json=body, catch_response=True, name=create) as response:
        if response.status_code == 409:
            response.success()
            found = user.client.get(lookup, name=lookup.rsplit("/", 1)[0] + "/{name}").json()
            found = found[0] if isinstance(found, list) else found
            return str(found.get("project_id") if "project" in create else found["model_id"])
        created = response.json()
        return str(created.get("model_id") or created["project_id"])


def register_once(user: HttpUser) -> None:
    project_id = fetch_or_create(
        user, f"{API}/projects", {"project_name": PROJECT}, f"{API}/projects/name/{PROJECT}"
    )
    model_id = fetch_or_create(
        user,
        f"{API}/models",
        {"project_id": project_id, "model_name": MODEL},
        f"{API}/models/name/{MODEL}",
    )
    versions = user.client.get(f"{API}/models/{model_id}/versions").json()
    if not versions:
        user.client.post(f"{API}/models/{model_id}/versions", json={})
        user.client.put(
            f"{API}/models/{model_id}/versions/1/artifacts/model.onnx",
            data=ARTIFACT,
            headers={"X-Content-SHA256": hashlib.sha256(ARTIFACT).hexdigest()},
        )
        user.client.put(f"{API}/models/{model_id}/aliases/{ALIAS}", json={"version": 1})
    state["model_id"] = model_id


class ModelLoader(HttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        if "model_id" not in state:
            register_once(self)

    @task(4)
    def resolve_alias(self) -> None:
        self.client.get(f"{API}/registry/{PROJECT}/{MODEL}/{ALIAS}")

    @task(2)
    def download_artifact(self) -> None:
        self.client.get(
            f"{API}/models/{state['model_id']}/versions/1/artifacts/model.onnx",
            name=f"{API}/models/{{id}}/versions/1/artifacts/model.onnx",
        )

    @task(1)
    def list_models(self) -> None:
        self.client.get(f"{API}/models/all?limit=50")
