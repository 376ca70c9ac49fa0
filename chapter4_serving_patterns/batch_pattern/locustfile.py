"""The load `make bench` sends to the batch API: what its clients do while runs happen.

Readers of results far outnumber writers of rows: pages of predictions, single rows by id,
the counts; now and then a small batch of new rows (which the `job` loop predicts at its next
run). Ids come from the seed's 1000 rows, which exist once `seed` has run.
"""

from __future__ import annotations

import random

from locust import HttpUser, constant, task

SEEDED_ROWS = 1000
NEW_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [6.7, 3.0, 5.2, 2.3]]


class ResultReader(HttpUser):
    wait_time = constant(0)

    @task(4)
    def one_row(self) -> None:
        self.client.get(f"/data/{random.randint(1, SEEDED_ROWS)}", name="/data/{id}")

    @task(3)
    def predicted_page(self) -> None:
        after_id = random.randint(0, SEEDED_ROWS - 50)
        self.client.get(f"/data/predicted?limit=50&after_id={after_id}", name="/data/predicted")

    @task(1)
    def counts(self) -> None:
        self.client.get("/data/counts")

    @task(1)
    def new_rows(self) -> None:
        self.client.post("/data", json={"data": NEW_ROWS})
