"""The load `make bench` sends to prep: held-out digits (data/test_png, written by `make
models`) as base64 PNG through POST /predict and POST /predict/label, and the sample through
GET /predict/test, in equal parts. Every user sends its next request as soon as the last one is
answered, and cycles through the images from a different start."""

from __future__ import annotations

import base64
import itertools
from pathlib import Path

from locust import HttpUser, constant, task

IMAGES = sorted((Path(__file__).resolve().parent / "data" / "test_png").glob("[0-9]*.png"))
BODIES = [{"image_data": base64.b64encode(path.read_bytes()).decode()} for path in IMAGES]
_starts = itertools.count(7)


class ImageClient(HttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        if not BODIES:
            raise RuntimeError("data/test_png holds no image: run `make models`")
        start = next(_starts) % len(BODIES)
        self.bodies = itertools.cycle(BODIES[start:] + BODIES[:start])

    @task
    def predict(self) -> None:
        self.client.post("/predict", json=next(self.bodies))

    @task
    def predict_label(self) -> None:
        self.client.post("/predict/label", json=next(self.bodies))

    @task
    def predict_test(self) -> None:
        self.client.get("/predict/test")
