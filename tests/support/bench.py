"""`make bench`: load a running pattern on loopback and write the results into its README.

The pattern is started with the launcher (as the tests do). Two tools, bounded in users and time:
- locust runs the pattern's locustfile.py headless at each concurrency of `[bench] users`;
- wrk (lighter than locust on 2 cores) measures single endpoints, `[[bench.wrk]]`, for the
  ratios `[[bench.ratios]]` compare: median of `repeat` runs, each endpoint in the same run.
The table goes between `<!-- bench:start -->` and `<!-- bench:end -->` in the pattern README.

    [bench]
    users = [1, 8, 32]
    duration_s = 10
    repeat = 3
    [[bench.wrk]]
    name = "health"
    path = "/health"
    [[bench.wrk]]
    name = "predict"
    method = "POST"
    path = "/predict"
    body = {data = [[5.1, 3.5, 1.4, 0.2]]}
    [[bench.ratios]]
    title = "/predict throughput / /health throughput"
    numerator = "predict"
    denominator = "health"
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.support.launcher import launch
from tests.support.pattern import REPO_ROOT, Pattern

START, END = "<!-- bench:start -->", "<!-- bench:end -->"
WRK_REPORT = """
done = function(summary, latency, requests)
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "errors": %d, "p50": %d, "p90": %d, "p99": %d}\\n',
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.status + summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
"""


@dataclass
class Measurement:
    label: str
    concurrency: int
    throughput: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    requests: int
    errors: int


def wrk_script(endpoint: dict[str, Any], directory: Path) -> Path:
    lines = [f'wrk.method = "{endpoint.get("method", "GET").upper()}"']
    if "body" in endpoint:
        lines.append(f"wrk.body = {json.dumps(json.dumps(endpoint['body']))}")
        lines.append('wrk.headers["Content-Type"] = "application/json"')
    script = directory / f"{endpoint['name']}.lua"
    script.write_text("\n".join(lines) + "\n" + WRK_REPORT)
    return script


def run_wrk(url: str, endpoint: dict[str, Any], settings: dict[str, Any], tmp: Path) -> Measurement:
    connections = int(settings.get("wrk_connections", 64))
    command = [
        "wrk", f"-t{settings.get('wrk_threads', 2)}", f"-c{connections}",
        f"-d{settings.get('wrk_duration_s', 10)}s", "--timeout", "10s",
        "-s", str(wrk_script(endpoint, tmp)), url + endpoint["path"],
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    report = json.loads(output.strip().splitlines()[-1])
    return Measurement(
        label=f"wrk {endpoint.get('method', 'GET').upper()} {endpoint['path']}",
        concurrency=connections,
        throughput=report["requests"] / (report["duration_us"] / 1e6),
        p50_ms=report["p50"] / 1000,
        p90_ms=report["p90"] / 1000,
        p99_ms=report["p99"] / 1000,
        requests=report["requests"],
        errors=report["errors"],
    )


def run_locust(pattern: Pattern, url: str, users: int, duration_s: int, tmp: Path) -> Measurement:
    prefix = tmp / f"locust-{users}"
    command = [
        sys.executable, "-m", "locust", "-f", str(pattern.directory / "locustfile.py"),
        "--headless", "--only-summary", "--host", url, "-u", str(users), "-r", str(users),
        "-t", f"{duration_s}s", "--csv", str(prefix), "--exit-code-on-error", "0",
        "--stop-timeout", "5",
    ]  # fmt: skip
    subprocess.run(command, capture_output=True, text=True, check=True, timeout=duration_s + 60)
    with open(f"{prefix}_stats.csv", newline="") as stats:
        total = next(row for row in csv.DictReader(stats) if row["Name"] == "Aggregated")
    return Measurement(
        label="locust (locustfile.py mix)",
        concurrency=users,
        throughput=float(total["Requests/s"]),
        p50_ms=float(total["50%"]),
        p90_ms=float(total["90%"]),
        p99_ms=float(total["99%"]),
        requests=int(total["Request Count"]),
        errors=int(total["Failure Count"]),
    )


def render(pattern: Pattern, rows: list[Measurement], ratios: list[tuple[str, float]]) -> str:
    lines = [
        f"Measured by `make bench` on {datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} cores "
        f"({platform.machine()}), load generator on the same machine: compare ratios measured in "
        "one run, not absolute figures across machines.",
        "",
        "| load | concurrency | throughput (req/s) | p50 (ms) | p90 (ms) | p99 (ms) "
        "| requests | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    lines += [
        f"| {row.label} | {row.concurrency} | {row.throughput:.1f} | {row.p50_ms:.2f} | "
        f"{row.p90_ms:.2f} | {row.p99_ms:.2f} | {row.requests} | {row.errors} |"
        for row in rows
    ]
    if ratios:
        lines += ["", "| ratio | value |", "|---|---:|"]
        lines += [f"| {title} | {value:.2f} |" for title, value in ratios]
    return "\n".join(lines)


def write_into_readme(readme: Path, table: str) -> None:
    text = readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{readme} has no {START} … {END} markers")
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    readme.write_text(f"{head}{START}\n{table}\n{END}{tail}")


def bench(pattern: Pattern) -> str:
    settings = tomllib.loads((pattern.directory / "pattern.toml").read_text()).get("bench", {})
    rows: list[Measurement] = []
    ratios: list[tuple[str, float]] = []
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-{pattern.name}-"))
    with launch(pattern, env=settings.get("env", {})) as running:
        url = running.url()
        if (pattern.directory / "locustfile.py").exists():
            for users in settings.get("users", [1, 8, 32]):
                rows.append(run_locust(pattern, url, users, int(settings.get("duration_s", 10)),
                                       tmp))  # fmt: skip
        endpoints = settings.get("wrk", [])
        if endpoints and shutil.which("wrk") is None:
            raise SystemExit("wrk not found: apt-get install wrk")
        runs: dict[str, list[Measurement]] = {endpoint["name"]: [] for endpoint in endpoints}
        for _ in range(int(settings.get("repeat", 3))):
            for endpoint in endpoints:  # interleaved, so drift hits every endpoint alike
                runs[endpoint["name"]].append(run_wrk(url, endpoint, settings, tmp))
        # the run of median throughput represents each endpoint (ENVIRONMENT.md: 2 workers
        # sometimes share keep-alive connections unevenly, so single runs vary)
        medians = {
            name: sorted(measured, key=lambda row: row.throughput)[len(measured) // 2]
            for name, measured in runs.items()
        }
        rows += medians.values()
        for ratio in settings.get("ratios", []):
            value = (
                medians[ratio["numerator"]].throughput / medians[ratio["denominator"]].throughput
            )
            ratios.append((ratio["title"], value))
    table = render(pattern, rows, ratios)
    write_into_readme(pattern.directory / "README.md", table)
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description="benchmark one pattern")
    parser.add_argument("pattern", help="pattern directory, relative to the repository root")
    args = parser.parse_args()
    print(bench(Pattern.load(REPO_ROOT / args.pattern)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
