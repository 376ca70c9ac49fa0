"""The load `make bench` sends to the proxy: the book's request, `{"data": "<item id>"}` for the
held-out digits of data/items (written by `make models`), through POST /predict and POST
/predict/label, and GET /predict/test. Each item misses once and hits afterwards: after the
first pass over the 250 items the load is the cache's hit path. Every user sends its next
request as soon as the last one is answered, and cycles through the items from another start."""

from __future__ import annotations

import itertools
from pathlib import Path

from locust import HttpUser, constant, task

ITEMS = sorted(
    path.stem for path in (Path(__file__).resolve().parent / "data" / "items").glob("[0-9]*.png")
)
_starts = itertools.count(7)


class ItemClient(HttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        if not ITEMS:
            raise RuntimeError("data/items holds no image: run `make models`")
        start = next(_starts) % len(ITEMS)
        self.items = itertools.cycle(ITEMS[start:] + ITEMS[:start])

    @task
    def predict(self) -> None:
        self.client.post("/predict", json={"data": next(self.items)})

    @task
    def predict_label(self) -> None:
        self.client.post("/predict/label", json={"data": next(self.items)})

    @task
    def predict_test(self) -> None:
        self.client.get("/predict/test")
