"""The image model server `pred` under test: started with the launcher, read through its own
HTTP answers and /metrics; onnxruntime in the test process is the oracle (image_checks)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from tests.support.image_checks import Answer, ImageOracle, Predictor, encode
from tests.support.launcher import RunningPattern, launch
from tests.support.pattern import REPO_ROOT

PATTERN = "chapter4_serving_patterns/synchronous_pattern"
PATTERN_DIR = REPO_ROOT / PATTERN
MODEL_DIR = PATTERN_DIR / "models" / "digits_resnet"
DATA_DIR = PATTERN_DIR / "data"
MAX_IMAGE_BYTES = 256 * 1024  # small in tests: an oversized upload stays cheap
BASE_ENV = {"MAX_IMAGE_BYTES": str(MAX_IMAGE_BYTES), "WORKERS": "1"}


@dataclass
class Pred:
    running: RunningPattern
    client: httpx.Client

    @property
    def url(self) -> str:
        return self.running.url()

    def post(self, path: str, body: Any, **kwargs: Any) -> httpx.Response:
        return self.client.post(path, json=body, **kwargs)

    def samples(self, name: str) -> dict[str, float]:
        """Every sample of the metric family `name` in /metrics, keyed `name{le=...}`."""
        text = self.client.get("/metrics").text
        values: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            if family.name != name:
                continue
            for sample in family.samples:
                le = sample.labels.get("le")
                values[sample.name + (f"{{le={le}}}" if le else "")] = sample.value
        return values

    def batches(self) -> tuple[int, int]:
        """(onnxruntime calls, calls with one image) from the batch size histogram."""
        values = self.samples("inference_batch_size")
        return int(values["inference_batch_size_count"]), int(
            values["inference_batch_size_bucket{le=1.0}"]
        )

    def log(self) -> str:
        return self.running.processes["pred"].log_text()


@contextmanager
def running_pred(env: Mapping[str, str] | None = None) -> Iterator[Pred]:
    with (
        launch(PATTERN, env={**BASE_ENV, **(env or {})}) as running,
        httpx.Client(base_url=running.url(), timeout=30.0) as client,
    ):
        yield Pred(running, client)


def v2_image_body(images: Sequence[bytes], outputs: Sequence[str] = ()) -> dict[str, Any]:
    body: dict[str, Any] = {
        "inputs": [
            {
                "name": "image",
                "datatype": "BYTES",
                "shape": [len(images)],
                "data": [encode(data) for data in images],
            }
        ]
    }
    if outputs:
        body["outputs"] = [{"name": name} for name in outputs]
    return body


def v2_predictor(client: httpx.Client, model: str, per_request: int = 3) -> Predictor:
    """V2 infer with the BYTES input `image`, `per_request` images per request (JSON)."""

    def predict(images: Sequence[bytes]) -> list[Answer]:
        answers = []
        for start in range(0, len(images), per_request):
            group = images[start : start + per_request]
            body = v2_image_body(group, ["probabilities", "label"])
            response = client.post(f"/v2/models/{model}/infer", json=body)
            assert response.status_code == 200, response.text
            outputs = {output["name"]: output for output in response.json()["outputs"]}
            assert outputs["probabilities"]["shape"][0] == len(group)
            width = outputs["probabilities"]["shape"][1]
            flat = outputs["probabilities"]["data"]
            for row, label in enumerate(outputs["label"]["data"]):
                answers.append(Answer(flat[row * width : (row + 1) * width], label))
        return answers

    return predict


def v2_fp32_predictor(client: httpx.Client, oracle: ImageOracle, per_request: int = 8) -> Predictor:
    """V2 infer with the FP32 input tensor, `per_request` images per request (JSON): the
    client preprocesses with the reference path, as the repo's internal clients do; the label
    is the top-1 class of the returned probabilities, named through the oracle's labels."""

    def predict(images: Sequence[bytes]) -> list[Answer]:
        answers = []
        for start in range(0, len(images), per_request):
            tensors = oracle.tensors(images[start : start + per_request])
            body = {
                "inputs": [
                    {
                        "name": "input",
                        "datatype": "FP32",
                        "shape": list(tensors.shape),
                        "data": tensors.ravel().tolist(),
                    }
                ],
                "outputs": [{"name": "probabilities"}],
            }
            response = client.post(f"/v2/models/{oracle.name}/infer", json=body)
            assert response.status_code == 200, response.text
            output = response.json()["outputs"][0]
            width = output["shape"][1]
            for row in range(output["shape"][0]):
                probabilities = output["data"][row * width : (row + 1) * width]
                top = int(np.argmax(probabilities))
                answers.append(Answer(probabilities, oracle.label_names[top]))
        return answers

    return predict


def concurrently(url: str, requests: Sequence[tuple[str, Any]]) -> list[httpx.Response]:
    """POST every (path, JSON body) at once, each on its own connection; answers in order."""

    async def send_all() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=len(requests) + 1)
        async with httpx.AsyncClient(base_url=url, timeout=30.0, limits=limits) as client:
            return list(
                await asyncio.gather(*(client.post(path, json=body) for path, body in requests))
            )

    return asyncio.run(send_all())


def image_body(data: bytes) -> dict[str, str]:
    return {"image_data": base64.b64encode(data).decode("ascii")}
