"""`make hitmiss` (run by `make bench` first): what a cache hit saves against a miss.

Starts the pattern with the launcher (pred and proxy, one gunicorn worker each, a fresh Redis)
and sends the same kind of request down both paths with wrk (a C load generator: on two cores
a Python client would measure itself): `POST /predict` with a held-out 64x64 PNG digit as
base64, over keep-alive connections, with 1 and with 8 connections.
- hit path: one image, already cached: decode base64, sha256, one Redis GET.
- miss path: every request a new image (item 0000 with its own PNG text chunk: the same
  pixels, another sha256), read by wrk's Lua script from a file written here: the GET, the
  lock script, preprocessing, the V2 call to pred, the store script.
What each run really was comes from the proxy's own `cache_requests_total{result}`: answers
other than the path's (a miss run that outran its bodies, a BYPASS) are counted in the table.
Runs alternate so that drift hits both alike; the median run of each is reported, and the
table goes between `<!-- hitmiss:start -->` and `<!-- hitmiss:end -->` in the pattern README.

    make hitmiss      # = cd <repository root> && PYTHONPATH=. python <this file>
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

PATTERN_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PATTERN_DIR))

from src.demo import unique_png  # noqa: E402
from tests.support.bench import WRK_REPORT  # noqa: E402
from tests.support.launcher import launch  # noqa: E402
from tests.support.pattern import Pattern  # noqa: E402

README = PATTERN_DIR / "README.md"
START, END = "<!-- hitmiss:start -->", "<!-- hitmiss:end -->"
CONNECTIONS = ((1, 1), (8, 2))  # (connections, wrk threads)
DURATION_S = 5
TURNS = 3
PATHS = {"hit": "HIT", "miss": "MISS"}
MISS_BODIES = 6000  # more than a 5 s miss run can send here: each is sent once
# wrk's Lua: each thread sends its share of the file's lines (one body per line), in order.
MISS_SCRIPT = """
local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end
function init(args)
  bodies, sent = {}, 0
  local index = 0
  for line in io.lines(args[1]) do
    if index % tonumber(args[2]) == id then bodies[#bodies + 1] = line end
    index = index + 1
  end
end
function request()
  sent = sent % #bodies + 1
  return wrk.format("POST", "/predict", {["Content-Type"] = "application/json"}, bodies[sent])
end
"""
_nonces = itertools.count()


@dataclass
class Run:
    requests: int
    throughput: float
    p50_ms: float
    p99_ms: float
    errors: int
    unexpected: int  # answers whose cache result was not the path's


def body_of(image: bytes) -> str:
    return json.dumps({"image_data": base64.b64encode(image).decode()})


def hit_script(body: str, tmp: Path) -> Path:
    lines = [
        'wrk.method = "POST"',
        'wrk.headers["Content-Type"] = "application/json"',
        f"wrk.body = {json.dumps(body)}",
    ]
    script = tmp / "hit.lua"
    script.write_text("\n".join(lines) + "\n" + WRK_REPORT)
    return script


def miss_bodies(sample: bytes, tmp: Path) -> Path:
    """A file of new images, one JSON body per line, none sent before."""
    path = tmp / f"miss-{next(_nonces)}.jsonl"
    with path.open("w") as lines:
        for _ in range(MISS_BODIES):
            lines.write(body_of(unique_png(sample, f"miss {next(_nonces)}")) + "\n")
    return path


def cache_results(url: str) -> dict[str, float]:
    results: dict[str, float] = {}
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        if line.startswith("cache_requests_total{"):
            result = line.split('result="', 1)[1].split('"', 1)[0]
            results[result] = float(line.rpartition(" ")[2])
    return results


def run_wrk(url: str, path: str, connections: int, threads: int, files: tuple[Path, Path]) -> Run:
    script, bodies = files
    before = cache_results(url)
    command = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{DURATION_S}s", "--timeout", "10s",
        "-s", str(script), url + "/predict",
    ]  # fmt: skip
    if path == "miss":
        command += ["--", str(bodies), str(threads)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    report = json.loads(output.strip().splitlines()[-1])
    after = cache_results(url)
    answered = {result: after.get(result, 0) - before.get(result, 0) for result in after}
    expected = answered.get(PATHS[path], 0)
    return Run(
        requests=report["requests"],
        throughput=report["requests"] / (report["duration_us"] / 1e6),
        p50_ms=report["p50"] / 1000,
        p99_ms=report["p99"] / 1000,
        errors=report["errors"],
        unexpected=round(sum(answered.values()) - expected),
    )


def table(results: dict[tuple[int, str], list[Run]]) -> str:
    lines = [
        f"Measured by `make hitmiss` on {datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} cores "
        f"({platform.machine()}), wrk on the same machine, {DURATION_S} s runs, the median of "
        f"{TURNS}; `POST /predict` with a 64x64 PNG digit as base64, one gunicorn worker per "
        "process, milliseconds.",
        "",
        "| connections | path | requests | throughput (req/s) | p50 | p99 | errors "
        "| other X-Cache |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    ratios = []
    for connections, _ in CONNECTIONS:
        medians = {}
        for path, header in PATHS.items():
            runs = sorted(results[connections, path], key=lambda run: run.throughput)
            run = medians[path] = runs[len(runs) // 2]
            lines.append(
                f"| {connections} | {path} ({header}) | {run.requests} | {run.throughput:.1f} "
                f"| {run.p50_ms:.2f} | {run.p99_ms:.2f} | {run.errors} | {run.unexpected} |"
            )
        ratio = medians["hit"].throughput / medians["miss"].throughput
        ratios.append(f"| {connections} | **hit / miss throughput** | | **{ratio:.1f}×** | | | | |")
    return "\n".join(lines + ratios)


def write_into_readme(readme: Path, text: str) -> None:
    content = readme.read_text()
    if START not in content or END not in content:
        raise SystemExit(f"{readme} has no {START} … {END} markers")
    head, _, rest = content.partition(START)
    _, _, tail = rest.partition(END)
    readme.write_text(f"{head}{START}\n{text}\n{END}{tail}")


def main() -> int:
    pattern = Pattern.load(PATTERN_DIR)
    sample = (PATTERN_DIR / "data" / "items" / "0000.png").read_bytes()
    tmp = Path(tempfile.mkdtemp(prefix="hitmiss-prediction_cache-"))
    script = tmp / "miss.lua"
    script.write_text(MISS_SCRIPT + WRK_REPORT)
    hit_body = body_of(unique_png(sample, "the hit path"))
    hit = hit_script(hit_body, tmp)
    results: dict[tuple[int, str], list[Run]] = {}
    with launch(pattern) as running:
        url = running.url()
        headers = {"Content-Type": "application/json"}
        httpx.post(url + "/predict", content=hit_body, headers=headers).raise_for_status()
        for (connections, threads), _, path in itertools.product(CONNECTIONS, range(TURNS), PATHS):
            files = (hit, tmp) if path == "hit" else (script, miss_bodies(sample, tmp))
            run = run_wrk(url, path, connections, threads, files)
            results.setdefault((connections, path), []).append(run)
    text = table(results)
    write_into_readme(README, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
