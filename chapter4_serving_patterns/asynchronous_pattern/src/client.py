"""A client of the proxy: `python -m src.client [IMAGE ...]` (Procfile.jobs `request_sample`).

Submits each image file (data/sample.png by default), polls `GET /job/{id}` until the job is
settled (CLIENT_WAIT_S at most), prints each state change and the label, then the proxy's
queue metrics. Exit status 0 when every job succeeded, 1 otherwise. The client side of the
pattern in a few lines: submit, keep the id, poll, read the result.
"""

from __future__ import annotations

import argparse
import base64
import sys
import time
from pathlib import Path

import httpx

from src.configurations import PATTERN_DIR, ClientSettings

SAMPLE = PATTERN_DIR / "data" / "sample.png"
POLL_INTERVAL_S = 0.1
QUEUE_METRICS = ("queue_depth ", "dead_letters ")


def submit(client: httpx.Client, path: Path) -> str:
    body = {"image_data": base64.b64encode(path.read_bytes()).decode()}
    response = client.post("/predict", json=body)
    print(f"POST /predict ({path.name}) -> {response.status_code} {response.text}")
    response.raise_for_status()
    job_id: str = response.json()["job_id"]
    return job_id


def wait(client: httpx.Client, job_id: str, wait_s: float) -> dict[str, object]:
    deadline = time.monotonic() + wait_s
    last = None
    while True:
        job = client.get(f"/job/{job_id}").raise_for_status().json()
        if job["status"] != last:
            last = job["status"]
            print(f"GET /job/{job_id} -> {last} (attempts {job['attempts']})")
        if last in ("succeeded", "dead") or time.monotonic() > deadline:
            return dict(job)
        time.sleep(POLL_INTERVAL_S)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.client", description=__doc__)
    parser.add_argument("images", nargs="*", type=Path, default=[SAMPLE])
    arguments = parser.parse_args(argv)
    settings = ClientSettings()
    succeeded = True
    with httpx.Client(
        base_url=settings.proxy_url, timeout=settings.client_http_timeout_s
    ) as client:
        for path in arguments.images:
            job = wait(client, submit(client, path), settings.client_wait_s)
            result = job.get("result")
            if isinstance(result, dict):
                print(f"{path.name}: label {result['label']!r} ({result['model']})")
            else:
                print(f"{path.name}: {job['status']}, error {job.get('error')}")
                succeeded = False
        metrics = client.get("/metrics").text.splitlines()
        print("\n".join(line for line in metrics if line.startswith(QUEUE_METRICS)))
    return 0 if succeeded else 1


if __name__ == "__main__":
    sys.exit(main())
