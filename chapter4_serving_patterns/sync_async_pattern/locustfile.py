"""The load `make bench` sends to proxy: held-out digits (data/test_png, written by `make
models`) as base64 PNG through POST /predict (the quick model's answer and a queued job),
each followed by one poll of its job (GET /job/{id}), the client side of the pattern. Every
user sends its next request as soon as the last one is answered, and cycles through the
images from a different start."""

from __future__ import annotations

import base64
import itertools
from pathlib import Path

from locust import HttpUser, constant, task

IMAGES = sorted((Path(__file__).resolve().parent / "data" / "test_png").glob("[0-9]*.png"))
BODIES = [{"image_data": base64.b64encode(path.read_bytes()).decode()} for path in IMAGES]
_starts = itertools.count(7)


class QuickThenQueued(HttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        if not BODIES:
            raise RuntimeError("data/test_png holds no image: run `make models`")
        start = next(_starts) % len(BODIES)
        self.bodies = itertools.cycle(BODIES[start:] + BODIES[:start])

    @task
    def predict_and_poll(self) -> None:
        response = self.client.post("/predict", json=next(self.bodies))
        job_id = response.json().get("job_id") if response.status_code == 200 else None
        if job_id:
            self.client.get(f"/job/{job_id}", name="/job/{job_id}")
