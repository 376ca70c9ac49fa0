"""Unit tests of the canonical src/common modules (errors, request id, logging, metrics), on a
small app built here in-process, so that they hold for every pattern that copies them."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from pydantic import BaseModel

from src.common.errors import ApiError, install_error_handlers
from src.common.logging import JsonLinesHandler, setup_logging
from src.common.metrics import UNMATCHED_ROUTE, counter, install_metrics
from src.common.request_id import RequestIdMiddleware, accept_or_generate, current_request_id

GENERATED_ID = re.compile(r"[0-9a-f]{32}")


class Item(BaseModel):
    name: str
    count: int


def build_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    install_metrics(app)
    app.add_middleware(RequestIdMiddleware)

    @app.post("/items")
    def create(item: Item) -> Item:
        return item

    @app.get("/items/{item_id}")
    def read(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    @app.get("/teapot")
    def teapot() -> None:
        raise ApiError(418, "teapot", "short and stout", headers={"Retry-After": "3"})

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    @app.get("/whoami")
    def whoami() -> dict[str, str | None]:
        return {"request_id": current_request_id()}

    return app


class InProcessClient:
    """Requests straight into the ASGI app (no server, no lifespan needed here)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            # raise_app_exceptions=False: a 500 is the response the app sent, as over a socket
            transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
                return await client.request(method, url, **kwargs)

        return anyio.run(send)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)


@pytest.fixture(scope="module")
def client() -> InProcessClient:
    return InProcessClient(build_app())


def envelope(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


# --- errors ----------------------------------------------------------------------------------


def test_api_error_keeps_status_code_message_and_headers(client: InProcessClient) -> None:
    response = client.get("/teapot")
    body = envelope(response, 418, "teapot")
    assert body["error"] == "short and stout"
    assert response.headers["Retry-After"] == "3"
    assert "details" not in body


def test_validation_error_lists_loc_and_msg(client: InProcessClient) -> None:
    response = client.post("/items", json={"name": "x", "count": "many"})
    body = envelope(response, 422, "invalid_input")
    assert body["details"] == [{"loc": ["body", "count"], "msg": body["details"][0]["msg"]}]
    assert "many" not in json.dumps(body["details"])  # the input itself is not echoed


def test_malformed_json_is_422(client: InProcessClient) -> None:
    response = client.post(
        "/items", content=b'{"name": ', headers={"Content-Type": "application/json"}
    )
    body = envelope(response, 422, "invalid_input")
    assert "JSON" in str(body["error"])


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_json_route_refuses_other_media_types(
    client: InProcessClient, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/items", content=b"name=x&count=1", headers=headers)
    envelope(response, 415, "unsupported_media_type")


def test_json_subtypes_and_charset_are_json(client: InProcessClient) -> None:
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        response = client.post(
            "/items", content=b'{"name": "x", "count": 1}', headers={"Content-Type": content_type}
        )
        assert response.status_code == 200, response.text


def test_unknown_route_and_wrong_method(client: InProcessClient) -> None:
    envelope(client.get("/nowhere"), 404, "not_found")
    response = client.delete("/items/1")
    envelope(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "GET"


def test_unexpected_exception_is_a_json_500_without_internals(client: InProcessClient) -> None:
    response = client.get("/boom", headers={"X-Request-ID": "boom-1"})
    body = envelope(response, 500, "internal_error")
    assert body["request_id"] == "boom-1"
    assert "secret" not in response.text and "Traceback" not in response.text


# --- request id --------------------------------------------------------------------------------


def test_request_id_is_taken_when_safe_else_generated(client: InProcessClient) -> None:
    assert client.get("/whoami", headers={"X-Request-ID": "abc-1"}).json() == {
        "request_id": "abc-1"
    }
    for unsafe in ("x" * 129, "<b>", "a b", ""):
        response = client.get("/whoami", headers={"X-Request-ID": unsafe})
        assert GENERATED_ID.fullmatch(response.headers["X-Request-ID"])
        assert response.json()["request_id"] == response.headers["X-Request-ID"]
    assert accept_or_generate(" padded ") == "padded"
    assert accept_or_generate("y" * 128) == "y" * 128


def test_response_carries_exactly_one_request_id_header(client: InProcessClient) -> None:
    response = client.get("/items/3", headers={"X-Request-ID": "only-one"})
    assert response.headers.get_list("X-Request-ID") == ["only-one"]


# --- logging ---------------------------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_setup_logging_is_idempotent_and_writes_json_lines() -> None:
    setup_logging("INFO")
    setup_logging("DEBUG")
    root = logging.getLogger()
    ours = [handler for handler in root.handlers if isinstance(handler, JsonLinesHandler)]
    assert len(ours) == 1
    stream = io.StringIO()
    ours[0].setStream(stream)

    logging.getLogger("model").info(
        "predicted", extra={"model_name": "iris_svc", "latency_ms": 1.5}
    )
    logging.getLogger("uvicorn.error").warning("routed through the root")
    logging.getLogger("uvicorn.access").info("silenced: the middleware writes access lines")
    try:
        raise ValueError("kaput")
    except ValueError:
        logging.getLogger("model").exception("failed")

    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [record["message"] for record in records] == [
        "predicted",
        "routed through the root",
        "failed",
    ]
    first = records[0]
    assert {"time", "level", "logger", "message", "request_id"} <= set(first)
    assert (first["level"], first["logger"], first["request_id"]) == ("INFO", "model", None)
    assert (first["model_name"], first["latency_ms"]) == ("iris_svc", 1.5)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["time"])
    assert "ValueError: kaput" in records[2]["exc_info"]


# --- metrics ---------------------------------------------------------------------------------


def requests_counted(method: str, route: str, status: str) -> float:
    labels = {"method": method, "route": route, "status": status}
    return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0


def test_requests_are_counted_by_route_template_not_raw_path(client: InProcessClient) -> None:
    before = requests_counted("GET", "/items/{item_id}", "200")
    unmatched_before = requests_counted("GET", UNMATCHED_ROUTE, "404")
    for item_id in (1, 2, 3):
        assert client.get(f"/items/{item_id}").status_code == 200
    client.get("/nowhere/at/all")
    assert requests_counted("GET", "/items/{item_id}", "200") == before + 3
    assert requests_counted("GET", UNMATCHED_ROUTE, "404") == unmatched_before + 1


def test_metrics_route_serves_and_does_not_count_itself(client: InProcessClient) -> None:
    before = requests_counted("GET", "/metrics", "200")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert "http_requests_total" in response.text
    assert requests_counted("GET", "/metrics", "200") == before == 0.0


def test_failed_requests_are_counted_as_500(client: InProcessClient) -> None:
    before = requests_counted("GET", "/boom", "500")
    client.get("/boom")
    assert requests_counted("GET", "/boom", "500") == before + 1


def test_metric_helpers_return_the_same_metric_twice() -> None:
    first = counter("widgets_total", "widgets made", ["kind"])
    assert counter("widgets_total", "widgets made", ["kind"]) is first
    with pytest.raises(TypeError):
        from src.common.metrics import histogram

        histogram("widgets_total", "not a histogram")
