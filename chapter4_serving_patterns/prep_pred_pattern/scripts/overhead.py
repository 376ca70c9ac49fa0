"""`make overhead` (run by `make bench` too): what the split costs in end-to-end latency.

Starts the pattern with the launcher (pred and prep, one gunicorn worker each) and, beside it,
the one-process baseline: the same prep app with the graph in its own process
(src/prep/single.py, one worker). Both get the same bounded runs of `POST /predict/label` with
held-out digits (data/test_png) over keep-alive connections, at 1 and at 8 concurrent clients,
the two variants taking turns run by run so that drift hits both alike. The table goes between
`<!-- overhead:start -->` and `<!-- overhead:end -->` in the pattern README.

    make overhead      # = cd <repository root> && PYTHONPATH=. python <this file>
"""

from __future__ import annotations

import base64
import itertools
import os
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx

from tests.support.launcher import RunningProcess, base_environment, launch
from tests.support.pattern import Command, Pattern
from tests.support.ports import LOOPBACK, free_port

PATTERN_DIR = Path(__file__).resolve().parents[1]
README = PATTERN_DIR / "README.md"
START, END = "<!-- overhead:start -->", "<!-- overhead:end -->"
SINGLE = ["gunicorn", "--config", "src/prep/gunicorn.conf.py", "src.prep.single:create_app()"]
WARM_UP = 200
RUNS = ((1, 500), (8, 1000))  # (concurrent clients, requests per turn)
TURNS = 3  # turns per variant and concurrency, alternating split and single
VARIANTS = ("split: prep → pred", "one process")


def bodies() -> list[bytes]:
    images = sorted((PATTERN_DIR / "data" / "test_png").glob("[0-9]*.png"))
    if not images:
        raise SystemExit("data/test_png holds no image: run `make models`")
    return [b'{"image_data":"' + base64.b64encode(path.read_bytes()) + b'"}' for path in images]


def client_run(url: str, count: int, start: int, contents: list[bytes]) -> list[float]:
    latencies = []
    cycle = itertools.islice(itertools.cycle(contents), start, None)
    headers = {"Content-Type": "application/json"}
    with httpx.Client(base_url=url, timeout=30.0) as client:
        for content in itertools.islice(cycle, count):
            started = time.perf_counter()
            response = client.post("/predict/label", content=content, headers=headers)
            latencies.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
    return latencies


def measure(url: str, clients: int, total: int, contents: list[bytes]) -> tuple[list[float], float]:
    """Latencies (ms) of `total` requests from `clients` clients, and the requests per second."""
    share = total // clients
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        runs = pool.map(
            client_run, [url] * clients, [share] * clients, range(0, 97 * clients, 97),
            [contents] * clients,
        )  # fmt: skip
        latencies = [value for run in runs for value in run]
    return latencies, len(latencies) / (time.perf_counter() - started)


def percentile(values: list[float], fraction: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(fraction * 100) - 1]


def single_process(pattern: Pattern, log_dir: Path) -> RunningProcess:
    port = free_port()
    env = base_environment(pattern, {"HOST": LOOPBACK, "PREP_PORT": str(port)})
    process = RunningProcess(
        Command("single", {}, SINGLE), pattern.directory, env, log_dir / "single.log", port
    )
    process.start()
    deadline = time.monotonic() + 60
    while not _ready(process.url):
        if not process.alive() or time.monotonic() > deadline:
            process.stop()
            raise SystemExit(f"the one-process baseline did not start:\n{process.log_tail()}")
        time.sleep(0.1)
    return process


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/ready", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def table(results: dict[tuple[int, str], tuple[list[float], list[float]]]) -> str:
    lines = [
        f"Measured by `make overhead` on {datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} cores "
        f"({platform.machine()}), client on the same machine; `POST /predict/label` with "
        "held-out 64x64 PNG digits, one gunicorn worker per process, milliseconds.",
        "",
        "| clients | variant | requests | throughput (req/s) | p50 | p99 |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    overheads = []
    for clients, _ in RUNS:
        figures = {}
        for variant in VARIANTS:
            latencies, rates = results[clients, variant]
            p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
            figures[variant] = (p50, p99)
            lines.append(
                f"| {clients} | {variant} | {len(latencies)} | {statistics.median(rates):.1f} "
                f"| {p50:.2f} | {p99:.2f} |"
            )
        split, single = (figures[variant] for variant in VARIANTS)
        overheads.append(
            f"| {clients} | **the split's overhead** | | | **{split[0] - single[0]:+.2f}** "
            f"| **{split[1] - single[1]:+.2f}** |"
        )
    return "\n".join(lines + overheads)


def write_into_readme(readme: Path, text: str) -> None:
    content = readme.read_text()
    if START not in content or END not in content:
        raise SystemExit(f"{readme} has no {START} … {END} markers")
    head, _, rest = content.partition(START)
    _, _, tail = rest.partition(END)
    readme.write_text(f"{head}{START}\n{text}\n{END}{tail}")


def main() -> int:
    pattern = Pattern.load(PATTERN_DIR)
    contents = bodies()
    results: dict[tuple[int, str], tuple[list[float], list[float]]] = {}
    log_dir = Path(tempfile.mkdtemp(prefix="overhead-prep_pred-"))
    with launch(pattern) as running:
        single = single_process(pattern, log_dir)
        try:
            urls = dict(zip(VARIANTS, (running.url(), single.url), strict=True))
            for url in urls.values():
                measure(url, 1, WARM_UP, contents)
            for (clients, total), _, variant in itertools.product(RUNS, range(TURNS), VARIANTS):
                latencies, rate = measure(urls[variant], clients, total, contents)
                pooled, rates = results.setdefault((clients, variant), ([], []))
                pooled += latencies
                rates.append(rate)
        finally:
            single.stop()
    text = table(results)
    write_into_readme(README, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
