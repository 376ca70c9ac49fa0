"""The load `make bench` sends to the proxy: the items of data/ (written by `make models`) by id
through POST /predict and POST /predict/label, and item 0000 through GET /predict/test, in equal
parts. Every user sends its next request as soon as the last one is answered and cycles through
the items from a different start: the first pass over an item is a MISS, every later one a HIT,
so the mix measures a warm cache, as a service that sees the same items again would."""

from __future__ import annotations

import itertools
from pathlib import Path

from locust import HttpUser, constant, task

ITEMS = sorted(path.stem for path in (Path(__file__).resolve().parent / "data").glob("[0-9]*.png"))
BODIES = [{"data": item_id} for item_id in ITEMS]
_starts = itertools.count(7)


class ItemClient(HttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        if not BODIES:
            raise RuntimeError("data/ holds no item: run `make models`")
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
