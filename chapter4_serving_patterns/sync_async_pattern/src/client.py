"""A client of the proxy: `python -m src.client [IMAGE ...]` (Procfile.jobs `request_sample`).

Posts each image file (data/sample.png by default), prints the quick answer and the job id at
once, polls `GET /job/{id}` until the heavy model's job is settled (CLIENT_WAIT_S at most), and
prints both answers side by side: label and probabilities of the quick model, then of the heavy
one. Exit status 0 when every job succeeded, 1 otherwise. The client side of the pattern: show
the quick answer, keep the id, replace the answer when the better one arrives.
"""

from __future__ import annotations

import argparse
import base64
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from src.configurations import PATTERN_DIR, ClientSettings

SAMPLE = PATTERN_DIR / "data" / "sample.png"
POLL_INTERVAL_S = 0.1


def post(client: httpx.Client, path: Path) -> dict[str, Any]:
    body = {"image_data": base64.b64encode(path.read_bytes()).decode()}
    response = client.post("/predict", json=body)
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    quick = answer["sync"]
    if quick is not None:
        print(f"POST /predict ({path.name}) -> quick label {quick['label']!r} ({quick['model']})"
              f", job {answer['job_id']} {answer['async']['status']}")  # fmt: skip
    else:
        print(f"POST /predict ({path.name}) -> no quick answer ({answer['sync_error']}), "
              f"job {answer['job_id']} {answer['async']['status']}")  # fmt: skip
    return answer


def wait(client: httpx.Client, job_id: str, wait_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + wait_s
    last = None
    while True:
        job: dict[str, Any] = client.get(f"/job/{job_id}").raise_for_status().json()
        if job["status"] != last:
            last = job["status"]
            print(f"GET /job/{job_id} -> {last} (attempts {job['attempts']})")
        if last in ("succeeded", "dead") or time.monotonic() > deadline:
            return job
        time.sleep(POLL_INTERVAL_S)


def side_by_side(quick: dict[str, Any] | None, heavy: dict[str, Any]) -> str:
    def row(name: str, label: str, prediction: list[float]) -> str:
        return f"  {name:<24} {label!r:>5}  " + " ".join(f"{p:.3f}" for p in prediction)

    classes = " ".join(f"{index:>5}" for index in range(len(heavy["prediction"])))
    lines = [f"  {'model':<24} label  {classes}"]
    if quick is not None:
        lines.append(row(quick["model"], quick["label"], quick["prediction"]))
    lines.append(row(heavy["model"]["name"], heavy["label"], heavy["prediction"]))
    return "\n".join(lines)


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
            answer = post(client, path)
            if answer["job_id"] is None:
                print(f"{path.name}: the heavy model's job was not queued: {answer['async']}")
                succeeded = False
                continue
            job = wait(client, answer["job_id"], settings.client_wait_s)
            result = job.get("result")
            if isinstance(result, dict):
                print(
                    f"{path.name}: quick and heavy answers\n{side_by_side(answer['sync'], result)}"
                )
            else:
                print(f"{path.name}: {job['status']}, error {job.get('error')}")
                succeeded = False
    return 0 if succeeded else 1


if __name__ == "__main__":
    sys.exit(main())
