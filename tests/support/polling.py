"""Waiting for a state a test cannot force at once (a restart, an expiry, a queue draining):
poll with a deadline, never sleep and hope (SPEC 0.10 item 3)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx

INTERVAL_S = 0.05


def wait_for(condition: Callable[[], Any], *, timeout_s: float = 30.0, what: str) -> Any:
    """Poll until `condition()` is truthy and return it; fail after the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout_s:.0f} s")
        time.sleep(INTERVAL_S)


def poll(
    request: Callable[[], httpx.Response],
    accept: Callable[[httpx.Response], bool],
    *,
    timeout_s: float = 15.0,
    what: str,
) -> httpx.Response:
    """Repeat a request until its answer is accepted (a restarted or resumed process, an
    expiry); the last answer is in the failure message."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = request()
        if accept(response):
            return response
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout_s:.0f} s: {response.text}")
        time.sleep(INTERVAL_S)


def log_records(text: str) -> list[dict[str, Any]]:
    """The JSON lines of a process log (other lines, if any, are skipped)."""
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records
