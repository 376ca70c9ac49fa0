"""`make overhead` (run by `make bench` too): what the proxy adds to the slowest backend call.

Starts the pattern with the launcher and sends bounded runs of one-row `POST /predict` to the
proxy over keep-alive connections, at 1 and at 8 concurrent clients. For each answer:

    overhead = latency the client measured - max(latency_ms of the three services)

where each service's `latency_ms` is the proxy's own timing of that backend call (connection
from its pool, request, complete answer). The overhead is thus everything but the slowest
backend call: the client's hop to the proxy, reading and checking the body, starting the
three calls, gathering, encoding the answer. The table goes between `<!-- overhead:start -->`
and `<!-- overhead:end -->` in the pattern README.

    make overhead      # = cd <repository root> && PYTHONPATH=. python <this file>
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from tests.support.launcher import launch
from tests.support.pattern import Pattern

PATTERN_DIR = Path(__file__).resolve().parents[1]
README = PATTERN_DIR / "README.md"
START, END = "<!-- overhead:start -->", "<!-- overhead:end -->"
BODY = {"data": [[5.1, 3.5, 1.4, 0.2]]}
WARM_UP = 200
RUNS = ((1, 2000), (8, 4000))  # (concurrent clients, requests in all)


@dataclass
class Sample:
    client_ms: float
    slowest_backend_ms: float
    full: bool  # every backend answered (a partial answer waited for a time-out: left out)

    @property
    def overhead_ms(self) -> float:
        return self.client_ms - self.slowest_backend_ms


def one_request(client: httpx.Client) -> Sample:
    started = time.perf_counter()
    response = client.post("/predict", json=BODY)
    client_ms = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    services = response.json()["services"].values()
    full = all(part["status"] == "ok" for part in services)
    return Sample(client_ms, max(part["latency_ms"] for part in services), full)


def client_run(url: str, count: int) -> list[Sample]:
    with httpx.Client(base_url=url, timeout=10.0) as client:
        return [one_request(client) for _ in range(count)]


def measure(url: str, clients: int, total: int) -> list[Sample]:
    with ThreadPoolExecutor(clients) as pool:
        runs = pool.map(client_run, [url] * clients, [total // clients] * clients)
        return [sample for run in runs for sample in run]


def percentile(values: list[float], fraction: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(fraction * 100) - 1]


def table(results: dict[int, list[Sample]]) -> str:
    lines = [
        f"Measured by `make overhead` on {datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} cores "
        f"({platform.machine()}), client on the same machine; one-row `POST /predict`, "
        "milliseconds.",
        "",
        "| clients | requests | client p50 | client p99 | slowest backend call p50 "
        "| slowest backend call p99 | **proxy overhead p50** | **proxy overhead p99** "
        "| partial answers |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for clients, all_samples in results.items():
        samples = [sample for sample in all_samples if sample.full]
        client_ms = [s.client_ms for s in samples]
        backend_ms = [s.slowest_backend_ms for s in samples]
        overhead_ms = [s.overhead_ms for s in samples]
        figures = [
            percentile(values, fraction)
            for values in (client_ms, backend_ms, overhead_ms)
            for fraction in (0.5, 0.99)
        ]
        cells = [f"{value:.2f}" for value in figures[:4]]
        cells += [f"**{value:.2f}**" for value in figures[4:]]
        partial = len(all_samples) - len(samples)
        lines.append(f"| {clients} | {len(all_samples)} | {' | '.join(cells)} | {partial} |")
    return "\n".join(lines)


def write_into_readme(readme: Path, text: str) -> None:
    content = readme.read_text()
    if START not in content or END not in content:
        raise SystemExit(f"{readme} has no {START} … {END} markers")
    head, _, rest = content.partition(START)
    _, _, tail = rest.partition(END)
    readme.write_text(f"{head}{START}\n{text}\n{END}{tail}")


def main() -> int:
    with launch(Pattern.load(PATTERN_DIR)) as running:
        url = running.url()
        measure(url, 1, WARM_UP)
        results = {clients: measure(url, clients, total) for clients, total in RUNS}
    text = table(results)
    write_into_readme(README, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
