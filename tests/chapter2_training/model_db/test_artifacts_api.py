"""SPEC 1.3 acceptance test 5 (artifacts) on SQLite and PostgreSQL: round trip with sha256,
immutability, checksum and filename checks, the size limit, and no write outside ARTIFACT_ROOT.
The expected digests are computed here with hashlib from the bytes the test sends."""

from __future__ import annotations

import hashlib
import http.client
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.chapter2_training.model_db.harness import (
    API,
    MAX_ARTIFACT_BYTES,
    Registry,
    all_pages,
    expect_error,
    simultaneously,
)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_under(directory: Path) -> set[Path]:
    return {path for path in directory.rglob("*") if path.is_file()}


@pytest.fixture
def version_url(registry: Registry) -> str:
    """The API path of version 1 of a fresh model."""
    model_id = registry.fresh_model()["model_id"]
    registry.version(model_id)
    return f"{API}/models/{model_id}/versions/1"


def test_upload_download_round_trip(registry: Registry, version_url: str) -> None:
    data = os.urandom(20_000)
    digest = sha256(data)
    response = registry.client.put(
        f"{version_url}/artifacts/model.onnx", content=data, headers={"X-Content-SHA256": digest}
    )
    assert response.status_code == 201, response.text
    assert response.json() == {"filename": "model.onnx", "size": len(data), "sha256": digest}

    download = registry.client.get(f"{version_url}/artifacts/model.onnx")
    assert download.status_code == 200
    assert sha256(download.content) == digest
    assert download.headers["X-Content-SHA256"] == digest
    assert download.headers["ETag"] == f'"{digest}"'
    assert int(download.headers["Content-Length"]) == len(data)

    listed = registry.client.get(f"{version_url}/artifacts")
    assert listed.json() == [{"filename": "model.onnx", "size": len(data), "sha256": digest}]
    assert listed.headers["X-Total-Count"] == "1"
    version = registry.client.get(version_url).json()
    assert version["artifacts"] == listed.json()


def test_three_artifacts_resolve_with_download_paths(registry: Registry) -> None:
    project = registry.project()
    model = registry.model(project["project_id"])
    registry.version(model["model_id"])
    files = {name: os.urandom(100 + index) for index, name in enumerate(
        ("label.json", "metadata.json", "model.onnx")
    )}  # fmt: skip
    base = f"{API}/models/{model['model_id']}/versions/1/artifacts"
    for name, data in files.items():
        assert registry.client.put(f"{base}/{name}", content=data).status_code == 201
    alias = registry.client.put(
        f"{API}/models/{model['model_id']}/aliases/production", json={"version": 1}
    )
    assert alias.status_code == 200

    resolved = registry.client.get(
        f"{API}/registry/{project['project_name']}/{model['model_name']}/production"
    ).json()
    assert [item["filename"] for item in resolved["artifacts"]] == sorted(files)
    for item in resolved["artifacts"]:
        assert item["sha256"] == sha256(files[item["filename"]])
        assert registry.client.get(item["download_path"]).content == files[item["filename"]]


def test_identical_bytes_are_200_other_bytes_409(registry: Registry, version_url: str) -> None:
    data = b"the first bytes"
    url = f"{version_url}/artifacts/label.json"
    assert registry.client.put(url, content=data).status_code == 201
    again = registry.client.put(url, content=data)
    assert again.status_code == 200
    assert again.json()["sha256"] == sha256(data)
    expect_error(registry.client.put(url, content=b"other bytes"), 409, "conflict")
    assert registry.client.get(url).content == data  # immutable


def test_checksum_mismatch_is_422_and_stores_nothing(registry: Registry, version_url: str) -> None:
    url = f"{version_url}/artifacts/model.onnx"
    response = registry.client.put(
        url, content=b"payload", headers={"X-Content-SHA256": sha256(b"something else")}
    )
    expect_error(response, 422, "invalid_input")
    expect_error(registry.client.get(url), 404, "not_found")
    malformed = registry.client.put(url, content=b"payload", headers={"X-Content-SHA256": "abc"})
    expect_error(malformed, 422, "invalid_input")


def test_concurrent_identical_uploads_create_once(registry: Registry, version_url: str) -> None:
    data = os.urandom(30_000)
    url = f"{registry.url}{version_url}/artifacts/model.onnx"
    statuses = simultaneously(6, lambda client: client.put(url, content=data))
    assert sorted(statuses) == [200] * 5 + [201]
    assert sha256(registry.client.get(url).content) == sha256(data)


def test_concurrent_different_uploads_keep_one(registry: Registry, version_url: str) -> None:
    url = f"{registry.url}{version_url}/artifacts/model.onnx"
    payloads = iter([os.urandom(1000) for _ in range(6)])
    statuses = simultaneously(6, lambda client: client.put(url, content=next(payloads)))
    assert sorted(statuses) == [201] + [409] * 5
    stored = registry.client.get(url)
    assert stored.headers["X-Content-SHA256"] == sha256(stored.content)


@pytest.mark.parametrize(
    "filename",
    [
        "%2E%2E",
        "a..b",
        "..%2Fescape",
        "%2E%2E%2F%2E%2E%2Fescape",
        "sp%20ace",
        "x" * 129,
        "%00",
    ],
)
def test_bad_filenames_are_refused(registry: Registry, version_url: str, filename: str) -> None:
    before = files_under(registry.sandbox)
    response = registry.client.put(f"{version_url}/artifacts/{filename}", content=b"escape")
    # 422 for a name the route sees; a `/` inside the name makes it another (unknown) path
    assert response.status_code in {404, 422}, response.text
    expect_error(
        response,
        response.status_code,
        {404: "not_found", 422: "invalid_input"}[response.status_code],
    )
    assert files_under(registry.sandbox) == before


def test_raw_dot_dot_segments_write_nothing_outside_the_root(
    registry: Registry, version_url: str
) -> None:
    """httpx normalises `..` away (a literal `..` never reaches the server from it);
    http.client sends the path as written."""
    before = files_under(registry.sandbox)
    host, port = registry.url.removeprefix("http://").split(":")
    for path in (
        f"{version_url}/artifacts/../../../../escape",
        f"{version_url}/artifacts/..%2F..%2F..%2Fescape",
        f"{version_url}/artifacts/..",
    ):
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            connection.request("PUT", path, body=b"escape")
            status = connection.getresponse().status
        finally:
            connection.close()
        assert status in {404, 405, 422}, (path, status)
    assert files_under(registry.sandbox) == before
    assert not list(registry.sandbox.parent.rglob("escape"))


def test_upload_over_the_limit_is_413(registry: Registry, version_url: str) -> None:
    url = f"{version_url}/artifacts/model.onnx"
    too_big = os.urandom(MAX_ARTIFACT_BYTES + 1)
    expect_error(registry.client.put(url, content=too_big), 413, "payload_too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while streaming
        for start in range(0, len(too_big), 8192):
            yield too_big[start : start + 8192]

    with httpx.Client(base_url=registry.url, timeout=30.0) as client:
        streamed = client.put(url, content=chunks())
    expect_error(streamed, 413, "payload_too_large")
    expect_error(registry.client.get(url), 404, "not_found")
    assert not list((registry.artifact_root / ".incoming").iterdir())  # temp files removed

    exact = os.urandom(MAX_ARTIFACT_BYTES)
    assert registry.client.put(url, content=exact).status_code == 201


def test_upload_to_an_unknown_version_is_404(registry: Registry, version_url: str) -> None:
    unknown = version_url.removesuffix("/1") + "/2"
    response = registry.client.put(f"{unknown}/artifacts/model.onnx", content=b"data")
    expect_error(response, 404, "not_found")


def test_artifact_list_is_paginated_in_filename_order(registry: Registry, version_url: str) -> None:
    names = [f"part-{index:02d}.bin" for index in range(7)]
    for name in reversed(names):
        assert (
            registry.client.put(f"{version_url}/artifacts/{name}", content=b"x").status_code == 201
        )
    path = version_url.removeprefix(API) + "/artifacts"
    assert [item["filename"] for item in all_pages(registry.client, path, limit=3)] == names
