"""`make demo`: a guided tour that starts each pattern locally and shows it working.

Chapter 2 first: the trained iris models (from `make models`), the model registry started with
the launcher, every model registered into it, a retrained model registered as version 2, and the
`production` alias moved to it. Then every other pattern that declares processes: its jobs, its
processes, the sample requests of its pattern.toml, and the p50 latency of its first request.
A pattern whose system service is not installed is reported as skipped with the install hint.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from tests.support.launcher import launch, run_job, send_demo_requests
from tests.support.pattern import REPO_ROOT, Pattern, pattern_directories
from tests.support.services import ServiceUnavailable

# rich falls back to 80 columns without a terminal (CI logs, pipes): too narrow for the tables
console = Console(highlight=False, width=None if sys.stdout.isatty() else 130)
MODEL_DB = "chapter2_training/model_db"
LATENCY_SAMPLES = 50


@dataclass
class Row:
    pattern: str
    status: str
    p50_ms: float | None = None
    note: str = ""


@contextmanager
def step(title: str) -> Iterator[None]:
    with console.status(f"[bold]{title}…"):
        yield
    console.print(f"[green]✓[/green] {title}")


def show(method: str, path: str, response: httpx.Response) -> None:
    console.print(f"  [cyan]{method} {path}[/cyan] → {response.status_code}")
    text = response.text if len(response.text) < 300 else response.text[:300] + " …"
    console.print(f"    {text}", soft_wrap=True)


def p50_latency_ms(url: str) -> float:
    """Median latency of LATENCY_SAMPLES sequential GETs on one keep-alive connection."""
    samples = []
    with httpx.Client(timeout=10.0) as client:
        for _ in range(LATENCY_SAMPLES):
            started = time.perf_counter()
            client.get(url).raise_for_status()
            samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def trained_models() -> list[Path]:
    return sorted(REPO_ROOT.glob("chapter2_training/iris_*/models/*/metadata.json"))


def print_models() -> None:
    table = Table(title="chapter 2: trained models (make models)")
    for column in ("model", "version", "test metric", "sample row", "prediction"):
        table.add_column(column)
    for path in trained_models():
        metadata = json.loads(path.read_text())
        metrics = metadata.get("metrics", {})
        metric = (
            f"accuracy {metrics['accuracy']:.3f}" if "accuracy" in metrics
            else f"outlier fraction {metrics.get('outlier_fraction_train', float('nan')):.3f}"
        )  # fmt: skip
        sample = metadata["data_sample"]
        table.add_row(metadata["name"], metadata["version"], metric, json.dumps(sample[0]),
                      predicted_label(path.parent, sample))  # fmt: skip
    console.print(table)


def predicted_label(model_dir: Path, rows: list[list[float]]) -> str:
    """What onnxruntime says of the sample row, through the model's own label map."""
    import numpy as np
    import onnxruntime

    session = onnxruntime.InferenceSession(str(model_dir / "model.onnx"))
    feeds = {session.get_inputs()[0].name: np.asarray(rows, dtype=np.float32)}
    label = session.run(["label"], feeds)[0].reshape(-1)[0]
    labels = json.loads((model_dir / "label.json").read_text())
    return str(labels.get(str(label), label))


def chapter2_tour(rows: list[Row]) -> None:
    print_models()
    workdir = Path(tempfile.mkdtemp(prefix="demo-model-db-"))
    env = {"DATABASE_URL": f"sqlite:///{workdir}/registry.sqlite3",
           "ARTIFACT_ROOT": str(workdir / "artifacts")}  # fmt: skip
    console.print("starting the model registry (chapter2_training/model_db, SQLite) …")
    with launch(MODEL_DB, env=env) as registry:
        base = registry.url()
        console.print(f"[green]✓[/green] registry ready at {base} (OpenAPI: {base}/docs)")
        for trainer in sorted(REPO_ROOT.glob("chapter2_training/iris_*/pattern.toml")):
            pattern = Pattern.load(trainer.parent)
            with step(f"register {pattern.name}'s models (make register)"):
                output = run_job(pattern, "register", {"MODEL_DB_URL": base})
            console.print("  " + output.strip().replace("\n", "\n  "))
        svc = Pattern.load(REPO_ROOT / "chapter2_training/iris_sklearn_svc")
        retrained = workdir / "retrained"
        with step("retrain iris_svc with another seed and register it (a new version)"):
            run_job_with_args(svc, retrained, base)
        with httpx.Client(base_url=base + "/v0.1", timeout=10.0) as client:
            model = client.get("/api/models/name/iris_svc").json()
            model = model[0] if isinstance(model, list) else model
            for method, path, body in (
                ("GET", "/api/models/all", None),
                ("GET", f"/api/models/{model['model_id']}/versions", None),
                ("PUT", f"/api/models/{model['model_id']}/aliases/production", {"version": 1}),
                ("GET", "/api/registry/iris/iris_svc/production", None),
                ("PUT", f"/api/models/{model['model_id']}/aliases/production", {"version": 2}),
                ("GET", "/api/registry/iris/iris_svc/production", None),
            ):
                response = client.request(method, path, json=body)
                show(method, path, response)
                response.raise_for_status()
        rows.append(Row(MODEL_DB, "works", p50_latency_ms(base + "/health"),
                        "registered, alias production moved 1 → 2"))  # fmt: skip
    for trainer in sorted(REPO_ROOT.glob("chapter2_training/iris_*/pattern.toml")):
        count = len(list(trainer.parent.glob("models/*/model.onnx")))
        rows.append(Row(trainer.parent.relative_to(REPO_ROOT).as_posix(), "works",
                        note=f"{count} model(s) trained and registered"))  # fmt: skip


def run_job_with_args(pattern: Pattern, output_dir: Path, registry_url: str) -> None:
    """The `train` line of Procfile.jobs with another seed and output directory."""
    import subprocess

    from tests.support.launcher import base_environment

    command = pattern.job_commands["train"].argv
    argv = [*command[: command.index("--output-dir")], "--output-dir", str(output_dir),
            "--seed", "7", "--test-size", "0.3"]  # fmt: skip
    env = base_environment(pattern, {"MODEL_DB_URL": registry_url})
    subprocess.run(argv, cwd=pattern.directory, env=env, check=True, capture_output=True)


def pattern_tour(pattern: Pattern, rows: list[Row]) -> None:
    console.rule(f"[bold]{pattern.relative}")
    if pattern.summary:
        console.print(pattern.summary)
    try:
        fresh = tempfile.mkdtemp(prefix=f"demo-{pattern.name}-")
        env = {key: value.replace("{tmp}", fresh) for key, value in pattern.demo_env.items()}
        with launch(pattern, env=env) as running:
            urls = {name: process.url for name, process in running.processes.items()}
            failures = send_demo_requests(pattern, urls, running.env)
            first_get = next((r for r in pattern.demo if r.method == "GET" and r.path), None)
            p50 = None
            if first_get is not None:
                p50 = p50_latency_ms(urls[first_get.process or pattern.entry or ""] +
                                     first_get.path)  # fmt: skip
            rows.append(Row(pattern.relative, "failed" if failures else "works", p50))
    except ServiceUnavailable as missing:
        rows.append(Row(pattern.relative, "skipped", note=str(missing)))
    except (RuntimeError, OSError, httpx.HTTPError) as failure:
        # the launcher printed the processes' logs; the tour goes on with the next pattern
        rows.append(Row(pattern.relative, "failed", note=str(failure).splitlines()[0][:120]))


def script_tour(pattern: Pattern, script: str, rows: list[Row]) -> None:
    """A pattern without processes (a generator) shows itself with a script of its own."""
    import subprocess

    from tests.support.launcher import base_environment

    console.rule(f"[bold]{pattern.relative}")
    if pattern.summary:
        console.print(pattern.summary)
    console.print(f"$ python {script}")
    result = subprocess.run(
        [sys.executable, script], cwd=pattern.directory, env=base_environment(pattern),
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    console.print(result.stdout + result.stderr, markup=False, highlight=False)
    rows.append(Row(pattern.relative, "works" if result.returncode == 0 else "failed",
                    note=f"{script} exited {result.returncode}"))  # fmt: skip


def summary(rows: list[Row]) -> None:
    table = Table(title="make demo: summary")
    for column in ("pattern", "status", "p50 latency", "note"):
        table.add_column(column)
    for row in rows:
        colour = {"works": "green", "skipped": "yellow"}.get(row.status, "red")
        latency = f"{row.p50_ms:.2f} ms" if row.p50_ms is not None else "—"
        table.add_row(row.pattern, f"[{colour}]{row.status}[/{colour}]", latency, row.note)
    console.print(table)


def main() -> int:
    rows: list[Row] = []
    if not trained_models():
        console.print("[red]no trained model: run make models[/red]")
        return 1
    console.rule("[bold]chapter 2: training and the model registry")
    chapter2_tour(rows)
    for directory in pattern_directories():
        pattern = Pattern.load(directory)
        if pattern.processes and pattern.relative != MODEL_DB:
            pattern_tour(pattern, rows)
        elif pattern.demo_script is not None:
            script_tour(pattern, pattern.demo_script, rows)
    summary(rows)
    return 0 if all(row.status != "failed" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
