"""The batch API on PostgreSQL (SPEC 3.4 acceptance tests 2, 5 and 6, the T-API input rules of
POST /data, lookups, readiness), through the real gunicorn process. One API per module, seeded
by the launcher's jobs; runs happen only when a test starts `job_once`."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.chapter4_serving_patterns.batch_pattern.harness import (
    SEED_ROWS,
    Api,
    Oracle,
    expect_error,
    pattern,
    settings,
    start_api,
    start_command,
    walk,
)
from tests.support.launcher import http_ok
from tests.support.ports import free_port, wait_until
from tests.support.services import PostgresServer

MAX_ROWS = 50  # small, so that the 413 test sends little


@pytest.fixture(scope="module")
def api(postgres_server: PostgresServer) -> Iterator[Api]:
    with start_api(postgres_server.create_database("batch"), MAX_ROWS=str(MAX_ROWS)) as running:
        yield running


def iris_like(count: int, seed: int) -> list[list[float]]:
    rng = np.random.default_rng(seed)
    low, high = np.array([4.3, 2.0, 1.0, 0.1]), np.array([7.9, 4.4, 6.9, 2.5])
    rows: list[list[float]] = np.round(rng.uniform(low, high, size=(count, 4)), 2).tolist()
    return rows


def rows_by_id(api: Api, ids: list[int]) -> list[dict[str, Any]]:
    found = {row["id"]: row for row in api.table.items(f"id IN ({','.join(map(str, ids))})")}
    return [found[row_id] for row_id in ids]


# --- acceptance ----------------------------------------------------------------------------------


def test_posted_rows_are_pending_until_the_next_run(api: Api, oracle: Oracle) -> None:
    posted = iris_like(10, seed=1)

    ids = api.post_rows(posted)

    assert len(ids) == len(set(ids)) == 10 and ids == sorted(ids)
    for row_id, values in zip(ids, posted, strict=True):
        item = api.item(row_id)
        assert item["status"] == "pending" and item["prediction"] is None, item
        assert item["values"] == values
    api.run_once()
    latest_run = api.get("/runs", limit=1).json()[0]
    items = [api.item(row_id) for row_id in ids]
    oracle.assert_predicted(items)
    assert {item["run_id"] for item in items} == {latest_run["run_id"]}
    assert all(item["predicted_datetime"] is not None for item in items)


def test_a_row_that_cannot_be_predicted_ends_error_and_the_others_succeed(
    api: Api, oracle: Oracle
) -> None:
    good = iris_like(3, seed=2)
    stored = [good[0], [5.1, 3.5, 1.4], good[1], ["a", 3.0, 1.4, 0.2], {"x": 1}, good[2]]
    ids = api.table.insert([json.dumps(values) for values in stored])

    api.run_once()

    items = [api.item(row_id) for row_id in ids]
    oracle.assert_predicted([items[0], items[2], items[5]])
    errors = [items[1], items[3], items[4]]
    assert all(item["status"] == "error" and item["prediction"] is None for item in errors)
    assert errors[0]["error"] == "expected 4 values, got 3"
    assert "value 0 is not a number" in errors[1]["error"]
    assert "must be a list" in errors[2]["error"]
    unpredicted, _ = walk(api.client, "/data/unpredicted", limit=100)
    assert {items[1]["id"], items[3]["id"], items[4]["id"]} <= {row["id"] for row in unpredicted}


def test_pagination_covers_every_row_once(api: Api) -> None:
    expected = {row["id"] for row in api.table.items()}
    assert len(expected) >= SEED_ROWS

    items, total = walk(api.client, "/data/all", limit=37)

    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids)) == total == len(expected)  # no duplicates
    assert set(ids) == expected  # no gaps
    assert ids == sorted(ids)
    predicted, _ = walk(api.client, "/data/predicted", limit=250)
    unpredicted, _ = walk(api.client, "/data/unpredicted", limit=250)
    assert {item["id"] for item in predicted} | {item["id"] for item in unpredicted} == expected
    assert not {item["id"] for item in predicted} & {item["id"] for item in unpredicted}


def test_rows_posted_during_a_walk_shift_no_page(api: Api) -> None:
    before = {row["id"] for row in api.table.items()}
    first = api.get("/data/all", limit=100)
    seen = [item["id"] for item in first.json()]
    api.post_rows(iris_like(5, seed=3))  # new rows land after the last id: pages stay put
    url: str | None = first.links["next"]["url"]
    while url is not None:
        response = api.client.get(url)
        seen += [item["id"] for item in response.json()]
        url = response.links["next"]["url"] if "next" in response.links else None
    assert len(seen) == len(set(seen))
    assert before <= set(seen)


def test_counts_add_up_to_the_table(api: Api) -> None:
    counts = api.get("/data/counts").json()
    for status in ("pending", "predicted", "error"):
        assert counts[status] == api.table.count(f"status = '{status}'")
    assert counts["total"] == api.table.count()


# --- POST /data input rules (T-API) --------------------------------------------------------------


def post(api: Api, body: Any) -> httpx.Response:
    return api.client.post("/data", json=body)


def post_raw(api: Api, content: bytes, content_type: str = "application/json") -> httpx.Response:
    return api.client.post("/data", content=content, headers={"Content-Type": content_type})


def test_integers_are_numbers(api: Api) -> None:
    response = post(api, {"data": [[5, 3, 1, 0]]})
    assert response.status_code == 201, response.text
    assert api.item(response.json()["ids"][0])["values"] == [5.0, 3.0, 1.0, 0.0]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"data": []},
        {"data": [[5.1, "3.5", 1.4, 0.2]]},
        {"data": [[5.1, True, 1.4, 0.2]]},
        {"data": [[5.1, None, 1.4, 0.2]]},
        {"data": [5.1, 3.5, 1.4, 0.2]},
        {"data": "rows"},
        {"data": [[5.1, 3.5, 1.4, 0.2]], "extra": 1},
    ],
    ids=["empty", "no-rows", "string", "bool", "null", "flat", "not-a-list", "unknown-field"],
)
def test_malformed_bodies_are_422(api: Api, body: Any) -> None:
    expect_error(post(api, body), 422, "invalid_input")


def test_a_row_of_the_wrong_width_is_422_naming_row_and_width(api: Api) -> None:
    rows = [[5.1, 3.5, 1.4, 0.2], [5.1, 3.5, 1.4], [5.1, 3.5, 1.4, 0.2, 9.9]]
    body = expect_error(post(api, {"data": rows}), 422, "invalid_input")
    assert body["details"] == [
        {"loc": ["body", "data", 1], "msg": "expected 4 values, got 3"},
        {"loc": ["body", "data", 2], "msg": "expected 4 values, got 5"},
    ]
    assert body["error"].startswith("row 1: expected 4 values")


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e39"])
def test_non_finite_numbers_are_422(api: Api, token: str) -> None:
    response = post_raw(api, f'{{"data": [[5.1, {token}, 1.4, 0.2]]}}'.encode())
    body = expect_error(response, 422, "invalid_input")
    assert body["details"][0]["loc"][:3] == ["body", "data", 0]


def test_more_than_max_rows_is_413(api: Api) -> None:
    body = expect_error(post(api, {"data": [[5.1, 3.5, 1.4, 0.2]] * (MAX_ROWS + 1)}), 413,
                        "payload_too_large")  # fmt: skip
    assert str(MAX_ROWS) in body["error"]
    assert post(api, {"data": [[5.1, 3.5, 1.4, 0.2]] * MAX_ROWS}).status_code == 201


def test_malformed_json_is_422_and_another_media_type_415(api: Api) -> None:
    expect_error(post_raw(api, b'{"data": [[5.1, 3.5'), 422, "invalid_input")
    expect_error(post_raw(api, b"\xff\xfe"), 422, "invalid_input")
    response = post_raw(api, b'{"data": [[5.1, 3.5, 1.4, 0.2]]}', "text/plain")
    expect_error(response, 415, "unsupported_media_type")


# --- lookups, headers, health --------------------------------------------------------------------


def test_an_unknown_id_is_404_and_a_malformed_one_422(api: Api) -> None:
    expect_error(api.get("/data/999999999"), 404, "not_found")
    expect_error(api.get("/data/abc"), 422, "invalid_input")
    expect_error(api.get("/data/all", limit=0), 422, "invalid_input")
    expect_error(api.get("/data/all", after_id=-1), 422, "invalid_input")


def test_request_ids_are_echoed(api: Api) -> None:
    response = api.client.get("/data/counts", headers={"X-Request-ID": "batch-test-1"})
    assert response.headers["X-Request-ID"] == "batch-test-1"


def test_health_ready_and_metrics(api: Api) -> None:
    assert api.get("/health").json() == {"health": "ok"}
    assert api.get("/ready").json() == {"status": "ready"}
    metrics = api.get("/metrics").text
    assert 'http_requests_total{method="GET",route="/data/{item_id}"' in metrics


def test_not_ready_before_init_db(postgres_database: Callable[[], str]) -> None:
    """An empty database (no `init_db` yet): alive, but /ready is 503 with the reason."""
    port = free_port()
    env = settings(postgres_database(), API_PORT=str(port), HOST="127.0.0.1")
    process = start_command(pattern().processes["api"], env, Path(tempfile.mkdtemp()))
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: http_ok(url + "/health"), timeout_s=30, what="the api to listen",
                   abort=process.exit_reason)  # fmt: skip
        response = httpx.get(url + "/ready", timeout=10)
        body = expect_error(response, 503, "dependency_unavailable")
        assert "items" in body["error"] and response.headers["Retry-After"]
    finally:
        process.stop()
