"""The load `make bench` sends: clients that each send one held-out digit image to
POST /predict and wait for the answer before sending the next (the synchronous pattern).

The images are the first 50 of data/test_png (written by `make models`), sent in turn.
"""

from __future__ import annotations

import base64
import itertools
from pathlib import Path

from locust import HttpUser, constant, task

IMAGES = sorted((Path(__file__).resolve().parent / "data" / "test_png").glob("0*.png"))[:50]
BODIES = [{"image_data": base64.b64encode(path.read_bytes()).decode()} for path in IMAGES]


class ImageClient(HttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        self.bodies = itertools.cycle(BODIES)

    @task
    def predict(self) -> None:
        self.client.post("/predict", json=next(self.bodies))
