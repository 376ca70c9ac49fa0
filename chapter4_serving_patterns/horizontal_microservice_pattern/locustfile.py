"""The load `make bench` sends to the proxy: what its clients do, mostly one-row predictions.

Every request fans out to the three model services, so each user's request costs four HTTP
exchanges on the same two cores. Rows are drawn from the iris data ranges with a fixed seed.
"""

from __future__ import annotations

import random

from locust import HttpUser, constant, task

# iris feature ranges (cm): sepal length, sepal width, petal length, petal width
RANGES = ((4.3, 7.9), (2.0, 4.4), (1.0, 6.9), (0.1, 2.5))


class ProxyClient(HttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        self.random = random.Random(20261126)

    def rows(self, count: int) -> list[list[float]]:
        return [
            [round(self.random.uniform(low, high), 1) for low, high in RANGES] for _ in range(count)
        ]

    @task(4)
    def predict(self) -> None:
        self.client.post("/predict", json={"data": self.rows(1)})

    @task(2)
    def predict_label(self) -> None:
        self.client.post("/predict/label", json={"data": self.rows(1)})

    @task(1)
    def predict_batch(self) -> None:
        self.client.post("/predict", json={"data": self.rows(20)}, name="/predict (20 rows)")
