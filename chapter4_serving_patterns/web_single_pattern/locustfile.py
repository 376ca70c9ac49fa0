"""The load `make bench` sends: the book's requests to the web single service, in equal parts.

GET /predict/test (the sample row, predicted now), POST /predict and POST /predict/label with
one iris row each; every user sends its next request as soon as the last one is answered.
"""

from __future__ import annotations

from locust import HttpUser, constant, task

ROW = {"data": [[5.1, 3.5, 1.4, 0.2]]}


class BookClient(HttpUser):
    wait_time = constant(0)

    @task
    def predict_test(self) -> None:
        self.client.get("/predict/test")

    @task
    def predict(self) -> None:
        self.client.post("/predict", json=ROW)

    @task
    def predict_label(self) -> None:
        self.client.post("/predict/label", json=ROW)
