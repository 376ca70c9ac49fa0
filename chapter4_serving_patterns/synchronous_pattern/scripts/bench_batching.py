"""`make bench_batching` (run first by `make bench`): micro-batching off against on, and V2's
binary tensor data against JSON, each measured on a running `pred`.

1. Batching: `pred` started twice with the launcher (the settings' defaults, BATCHING_ENABLED
   false then true); POST /predict with one held-out 64x64 PNG, each client waiting for its
   answer: wrk (light, microsecond latencies) at 1, 4 and 16 connections and locustfile.py at
   16 users (locust takes most of a core itself). The mean batch size of each run comes from
   pred's own batch size histogram (images / onnxruntime calls).
2. V2 with 8 images per request, batching off, wrk at 4 connections: the FP32 tensor `input`
   (preprocessed by the reference preprocessing) and the BYTES input `image`, each as JSON
   (numbers; base64 text) and as binary tensor data (raw little-endian float32; the raw
   files), answered in the same encoding.
3. onnxruntime alone on the same images, one session with one thread as a worker holds it,
   batches of 1 and 8: what batching could save inside the model.

Every run lasts 5 s and is repeated 3 times, interleaved with the others of its table (both
servers of 1. are up at once, each idle but for its own runs), so that other work on the
machine hits them alike; the median run is kept. The tables go between
`<!-- batching:start -->` and `<!-- batching:end -->` in the README.

    make bench_batching   # = cd <repository root> && PYTHONPATH=. python <this file>
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TypeVar

import httpx
import onnxruntime
from prometheus_client.parser import text_string_to_metric_families

from tests.support.bench import WRK_REPORT, Measurement, run_locust
from tests.support.image_checks import ImageOracle, encode, labelled_images
from tests.support.launcher import launch
from tests.support.pattern import Pattern

K = TypeVar("K")
T = TypeVar("T")
PATTERN_DIR = Path(__file__).resolve().parents[1]
README = PATTERN_DIR / "README.md"
START, END = "<!-- batching:start -->", "<!-- batching:end -->"
CONCURRENCY = (1, 4, 16)
LOCUST_USERS = 16
REPEAT = 3  # interleaved runs of each measurement; the median is kept
RUN_S = 5
V2_IMAGES = 8
MODEL_BATCHES = (1, 8)
V2_CONNECTIONS = 4
HEADER_LENGTH = "Inference-Header-Content-Length"


@dataclass
class BatchRun:
    batching: bool
    tool: str
    measurement: Measurement
    mean_batch: float


@dataclass
class V2Run:
    name: str
    body_bytes: int
    measurement: Measurement


def batch_totals(client: httpx.Client) -> tuple[float, float]:
    """(images, onnxruntime calls) so far, from pred's batch size histogram."""
    totals = {"inference_batch_size_sum": 0.0, "inference_batch_size_count": 0.0}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name in totals:
                totals[sample.name] += sample.value
    return totals["inference_batch_size_sum"], totals["inference_batch_size_count"]


def measured_run(
    client: httpx.Client, batching: bool, tool: str, measure: Callable[[], Measurement]
) -> BatchRun:
    images, calls = batch_totals(client)
    measurement = measure()
    more_images, more_calls = batch_totals(client)
    mean = (more_images - images) / max(more_calls - calls, 1.0)
    return BatchRun(batching, tool, measurement, mean)


def running_url(client: httpx.Client) -> str:
    return str(client.base_url).rstrip("/")


def interleaved(runs: dict[K, Callable[[], T]], throughput: Callable[[T], float]) -> dict[K, T]:
    """Every run REPEAT times, round-robin, so that other work on the machine hits them all
    alike; of each, the run of median throughput."""
    found: dict[K, list[T]] = {key: [] for key in runs}
    for _ in range(REPEAT):
        for key, run in runs.items():
            found[key].append(run())
    return {key: sorted(done, key=throughput)[len(done) // 2] for key, done in found.items()}


def batching_runs(pattern: Pattern, tmp: Path) -> list[BatchRun]:
    """Both servers up at once, each idle but for its own runs, interleaved."""
    body = json.dumps({"image_data": encode((PATTERN_DIR / "data" / "sample.png").read_bytes())})
    with contextlib.ExitStack() as stack:
        clients = {}
        for batching in (False, True):
            env = {"BATCHING_ENABLED": str(batching).lower()}
            running = stack.enter_context(launch(pattern, env=env))
            clients[batching] = stack.enter_context(httpx.Client(base_url=running.url()))
        urls = {batching: running_url(client) for batching, client in clients.items()}
        for url in urls.values():  # warm-up
            run_wrk_body(f"{url}/predict", body.encode(), None, tmp, duration_s=2)
        runs: dict[tuple[bool, str, int], Callable[[], BatchRun]] = {}
        for batching, client in clients.items():
            for users in CONCURRENCY:
                wrk = partial(
                    run_wrk_body, f"{urls[batching]}/predict", body.encode(), None, tmp,
                    connections=users, duration_s=RUN_S,
                )  # fmt: skip
                runs[batching, "wrk", users] = partial(measured_run, client, batching, "wrk", wrk)
            locust = partial(run_locust, pattern, urls[batching], LOCUST_USERS, RUN_S, tmp)
            runs[batching, "locust", LOCUST_USERS] = partial(
                measured_run, client, batching, "locust", locust
            )
        medians = interleaved(runs, lambda run: run.measurement.throughput)
    return [medians[key] for key in sorted(medians, key=lambda key: (key[0], key[1] != "wrk"))]


# --- V2: binary against JSON -----------------------------------------------------------------


def v2_bodies(oracle: ImageOracle, files: list[bytes]) -> dict[str, tuple[bytes, int | None]]:
    """name → (body, Inference-Header-Content-Length or None) for 8 images each way."""
    tensors = oracle.tensors(files)
    count = len(files)
    fp32 = {"name": "input", "datatype": "FP32", "shape": list(tensors.shape)}
    image = {"name": "image", "datatype": "BYTES", "shape": [count]}
    outputs = [{"name": "probabilities"}]

    def binary(header: dict[str, object], block: bytes) -> tuple[bytes, int]:
        text = json.dumps({**header, "parameters": {"binary_data_output": True}}).encode()
        return text + block, len(text)

    raw_files = b"".join(struct.pack("<I", len(data)) + data for data in files)
    raw_tensor = tensors.astype("<f4").tobytes()
    return {
        "FP32 `input`, JSON": (
            json.dumps({"inputs": [{**fp32, "data": tensors.ravel().tolist()}],
                        "outputs": outputs}).encode(),
            None,
        ),
        "FP32 `input`, binary": binary(
            {"inputs": [{**fp32, "parameters": {"binary_data_size": len(raw_tensor)}}]},
            raw_tensor,
        ),
        "BYTES `image`, JSON (base64)": (
            json.dumps({"inputs": [{**image, "data": [encode(data) for data in files]}],
                        "outputs": outputs}).encode(),
            None,
        ),
        "BYTES `image`, binary (raw files)": binary(
            {"inputs": [{**image, "parameters": {"binary_data_size": len(raw_files)}}]},
            raw_files,
        ),
    }  # fmt: skip


def run_wrk_body(
    url: str,
    body: bytes,
    header_length: int | None,
    tmp: Path,
    *,
    connections: int = V2_CONNECTIONS,
    duration_s: int = RUN_S,
) -> Measurement:
    body_path = tmp / f"body-{len(body)}-{header_length}"
    body_path.write_bytes(body)
    lines = [
        f'local f = assert(io.open("{body_path}", "rb"))',
        'wrk.body = f:read("*all")',
        "f:close()",
        'wrk.method = "POST"',
    ]
    lines += [f'wrk.headers["{key}"] = "{value}"' for key, value in _headers(header_length).items()]
    script = tmp / f"{body_path.name}.lua"
    script.write_text("\n".join(lines) + "\n" + WRK_REPORT)
    command = [
        "wrk", f"-t{min(connections, 2)}", f"-c{connections}", f"-d{duration_s}s",
        "--timeout", "10s",
        "-s", str(script), url,
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    report = json.loads(output.strip().splitlines()[-1])
    return Measurement(
        label="wrk",
        concurrency=connections,
        throughput=report["requests"] / (report["duration_us"] / 1e6),
        p50_ms=report["p50"] / 1000,
        p90_ms=report["p90"] / 1000,
        p99_ms=report["p99"] / 1000,
        requests=report["requests"],
        errors=report["errors"],
    )


def v2_run(name: str, body_bytes: int, measure: Callable[[], Measurement]) -> V2Run:
    return V2Run(name, body_bytes, measure())


def v2_runs(pattern: Pattern, tmp: Path) -> list[V2Run]:
    oracle = ImageOracle(PATTERN_DIR / "models" / "digits_resnet")
    files = [item.data for item in labelled_images(PATTERN_DIR / "data" / "test_png", V2_IMAGES)]
    runs: dict[str, Callable[[], V2Run]] = {}
    with launch(pattern, env={"BATCHING_ENABLED": "false"}) as running:
        url = f"{running.url()}/v2/models/{oracle.name}/infer"
        for name, (body, header_length) in v2_bodies(oracle, files).items():
            check = httpx.post(url, content=body, headers=_headers(header_length), timeout=10)
            check.raise_for_status()
            wrk = partial(run_wrk_body, url, body, header_length, tmp, duration_s=RUN_S)
            runs[name] = partial(v2_run, name, len(body), wrk)
        medians = interleaved(runs, lambda run: run.measurement.throughput)
    return list(medians.values())


def _headers(header_length: int | None) -> dict[str, str]:
    if header_length is None:
        return {"Content-Type": "application/json"}
    return {"Content-Type": "application/octet-stream", HEADER_LENGTH: str(header_length)}


# --- onnxruntime alone -------------------------------------------------------------------------


def model_alone(files: list[bytes]) -> list[tuple[int, float]]:
    """(batch size, seconds per call) of one session with one thread, as a worker holds it,
    on the reference tensors of held-out images: best of 3 runs of ~1 s each."""
    oracle = ImageOracle(PATTERN_DIR / "models" / "digits_resnet")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        str(oracle.model_dir / "model.onnx"), options, providers=["CPUExecutionProvider"]
    )
    tensors = oracle.tensors(files)
    timings = []
    for size in MODEL_BATCHES:
        feed = {oracle.input_name: tensors[:size]}
        best = float("inf")
        for _ in range(3):
            calls, started = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - started) < 1.0:
                session.run(None, feed)
                calls += 1
            best = min(best, elapsed / calls)
        timings.append((size, best))
    return timings


# --- the README -------------------------------------------------------------------------------


def tables(batching: list[BatchRun], v2: list[V2Run], alone: list[tuple[int, float]]) -> str:
    lines = [
        f"Measured by `make bench` on {datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} cores "
        f"({platform.machine()}), load generator on the same cores; settings' defaults otherwise.",
        "",
        "| POST /predict, one 64x64 PNG | load | clients | throughput (req/s) | p50 (ms) "
        "| p99 (ms) | mean batch | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for run in batching:
        row = run.measurement
        lines.append(
            f"| batching {'on' if run.batching else 'off'} | {run.tool} | {row.concurrency} | "
            f"{row.throughput:.1f} | {row.p50_ms:.2f} | {row.p99_ms:.2f} | "
            f"{run.mean_batch:.2f} | {row.errors} |"
        )
    lines += [
        "",
        f"| V2 infer, {V2_IMAGES} images per request (wrk, {V2_CONNECTIONS} connections) "
        "| body (bytes) | requests/s | images/s | p50 (ms) | p99 (ms) | errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for v2_run in v2:
        row = v2_run.measurement
        lines.append(
            f"| {v2_run.name} | {v2_run.body_bytes} | {row.throughput:.1f} | "
            f"{row.throughput * V2_IMAGES:.0f} | {row.p50_ms:.2f} | {row.p99_ms:.2f} | "
            f"{row.errors} |"
        )
    lines += [
        "",
        "| onnxruntime alone (digits_resnet, 1 thread) | ms per call | images/s |",
        "|---|---:|---:|",
    ]
    lines += [
        f"| batch of {size} | {seconds * 1000:.3f} | {size / seconds:.0f} |"
        for size, seconds in alone
    ]
    return "\n".join(lines)


def write_into_readme(readme: Path, text: str) -> None:
    content = readme.read_text()
    if START not in content or END not in content:
        raise SystemExit(f"{readme} has no {START} … {END} markers")
    head, _, rest = content.partition(START)
    _, _, tail = rest.partition(END)
    readme.write_text(f"{head}{START}\n{text}\n{END}{tail}")


def main() -> int:
    pattern = Pattern.load(PATTERN_DIR)
    tmp = Path(tempfile.mkdtemp(prefix="bench-batching-"))
    files = [item.data for item in labelled_images(PATTERN_DIR / "data" / "test_png", 16)]
    text = tables(batching_runs(pattern, tmp), v2_runs(pattern, tmp), model_alone(files))
    write_into_readme(README, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
