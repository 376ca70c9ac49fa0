"""`python -m src.evaluate --run-id ID`: classify every test PNG of the run with the exported
ONNX graph through the serving preprocessing (image_input: decode → RGB → resize → normalise),
write `metrics.json`, copy the figures into the model's metadata and publish the model
directory to the output directory (SPEC 1.2 behaviour 6). With `--server-url` the graph runs in
a V2 server instead (Open Inference Protocol, FP32 tensors)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import onnxruntime
from numpy.typing import NDArray

from src import cli
from src.configurations import Settings
from src.image_input import Preprocessing, preprocess
from src.ml import artifacts, data
from src.ml.transform import image_files
from src.preprocess import write_split
from src.runs import Json, Run, RunError

STEP = "evaluate"

Classify = Callable[[NDArray[np.float32]], NDArray[np.float32]]  # [1,3,H,W] → [1,C]


class ServerError(Exception):
    """The V2 server did not become ready or refused a request; the message is one line."""


def onnxruntime_classifier(model_path: Path) -> Classify:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 2
    session = onnxruntime.InferenceSession(
        str(model_path), options, providers=["CPUExecutionProvider"]
    )

    def classify(batch: NDArray[np.float32]) -> NDArray[np.float32]:
        outputs = session.run(["probabilities"], {"input": batch})
        return np.asarray(outputs[0], dtype=np.float32)

    return classify


def wait_ready(client: httpx.Client, name: str, timeout_s: float) -> None:
    """Poll the server's model readiness until it answers 200 or the deadline passes."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            response = client.get(f"/v2/models/{name}/ready")
            if response.status_code == 200:
                return
            last = f"status {response.status_code}"
        except httpx.HTTPError as error:
            last = str(error) or type(error).__name__
        time.sleep(0.2)
    raise ServerError(f"{client.base_url} not ready for {name} within {timeout_s} s ({last})")


def server_classifier(client: httpx.Client, name: str) -> Classify:
    def classify(batch: NDArray[np.float32]) -> NDArray[np.float32]:
        body = {
            "inputs": [
                {
                    "name": "input",
                    "datatype": "FP32",
                    "shape": list(batch.shape),
                    "data": batch.ravel().tolist(),
                }
            ],
            "outputs": [{"name": "probabilities"}],
        }
        try:
            response = client.post(f"/v2/models/{name}/infer", json=body)
        except httpx.HTTPError as error:
            raise ServerError(f"infer on {client.base_url}: {error}") from error
        if response.status_code != 200:
            raise ServerError(f"infer answered {response.status_code}: {response.text[:200]}")
        output = next(o for o in response.json()["outputs"] if o["name"] == "probabilities")
        return np.asarray(output["data"], dtype=np.float32).reshape(output["shape"])

    return classify


def classify_files(
    classify: Classify, files: list[tuple[Path, int]], prep: Preprocessing
) -> tuple[list[int], float]:
    """One image at a time, as a client sends them: predicted labels and total seconds
    (reading, preprocessing and inference)."""
    predicted: list[int] = []
    started = time.perf_counter()
    for path, _ in files:
        tensor = preprocess(path.read_bytes(), prep)
        predicted.append(int(np.argmax(classify(tensor[np.newaxis]), axis=1)[0]))
    return predicted, time.perf_counter() - started


def score(predicted: list[int], truth: list[int], classes: dict[str, str]) -> Json:
    count = len(classes)
    confusion = np.zeros((count, count), dtype=np.int64)
    for true, guess in zip(truth, predicted, strict=True):
        confusion[true, guess] += 1
    per_class = {
        classes[str(index)]: round(float(confusion[index, index] / row.sum()), 6)
        for index, row in enumerate(confusion)
        if row.sum() > 0
    }
    return {
        "total_tested": len(truth),
        "accuracy": round(float(np.trace(confusion) / max(len(truth), 1)), 6),
        "per_class_accuracy": per_class,
        "confusion_matrix": confusion.tolist(),
    }


def evaluate_files(
    classify: Classify, files: list[tuple[Path, int]], prep: Preprocessing, classes: dict[str, str]
) -> Json:
    predicted, seconds = classify_files(classify, files, prep)
    figures = score(predicted, [label for _, label in files], classes)
    figures["total_time"] = round(seconds, 4)
    figures["average_duration_second"] = round(seconds / max(len(files), 1), 6)
    return figures


def cross_domain_files(run: Run, prepared: Json) -> tuple[str, list[tuple[Path, int]]] | None:
    """digits only: the same held-out digits rendered in the other domain (written once)."""
    source = prepared["parameters"]
    if source["dataset"] != "digits":
        return None
    other = next(domain for domain in data.DOMAINS if domain != source["domain"])
    directory = run.step_dir(STEP) / f"test_{other}"
    if not directory.is_dir():
        write_split(directory, data.digits(other, source["seed"]).test)
    return other, image_files(directory)


def evaluate_model(run: Run, model_dir: Path, classify: Classify, figures_dir: Path) -> Json:
    """metrics of one model directory on the run's test split (+ cross-domain for digits),
    written to `figures_dir/metrics.json` and into the model's metadata."""
    prepared = run.step("preprocess")
    metadata = artifacts.read_metadata(model_dir)
    prep = Preprocessing.from_metadata(metadata["preprocessing"])
    classes: dict[str, str] = metadata["labels"]
    test_files = image_files(Path(prepared["outputs"]["directory"]) / "test")
    metrics = evaluate_files(classify, test_files, prep, classes)
    other = cross_domain_files(run, prepared)
    if other is not None:
        domain, files = other
        metrics["cross_domain_accuracy"] = {
            domain: evaluate_files(classify, files, prep, classes)["accuracy"]
        }
    figures_dir.mkdir(parents=True, exist_ok=True)
    (figures_dir / "metrics.json").write_bytes(artifacts.json_bytes(metrics))
    artifacts.update_metadata(model_dir, {"metrics": metrics})
    return metrics


def evaluate(run: Run, output_dir: Path, server_url: str | None, settings: Settings) -> Json:
    trained = run.step("train")["outputs"]
    staged = Path(trained["model_dir"])
    name = trained["model_name"]
    parameters: Json = {"server_url": server_url, "output_dir": str(output_dir)}
    with run.record(STEP, parameters, {"model_dir": str(staged)}) as outputs:
        if server_url is None:
            metrics = evaluate_model(
                run, staged, onnxruntime_classifier(staged / "model.onnx"), run.step_dir(STEP)
            )
        else:
            timeout = httpx.Timeout(settings.server_timeout_s)
            with httpx.Client(base_url=server_url.rstrip("/"), timeout=timeout) as client:
                wait_ready(client, name, settings.server_ready_timeout_s)
                classify = server_classifier(client, name)
                metrics = evaluate_model(run, staged, classify, run.step_dir(STEP))
        published = artifacts.publish(staged, output_dir)
        outputs.update(
            {
                "metrics": str(run.step_dir(STEP) / "metrics.json"),
                "accuracy": metrics["accuracy"],
                "evaluated_with": server_url or "onnxruntime",
                "published": str(published),
            }
        )
    print(describe(name, metrics, published), flush=True)
    return run.step(STEP)


def describe(name: str, metrics: Json, published: Path) -> str:
    cross = "".join(
        f"  on {domain} {accuracy:.4f}"
        for domain, accuracy in metrics.get("cross_domain_accuracy", {}).items()
    )
    return (
        f"{name}  test accuracy {metrics['accuracy']:.4f} on {metrics['total_tested']} images"
        f"{cross}  ({metrics['average_duration_second'] * 1000:.2f} ms per image)  -> {published}"
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m src.evaluate", description=__doc__)
    cli.add_run_arguments(parser, existing=True)
    cli.add_output_argument(parser)
    parser.add_argument(
        "--server-url", help="evaluate through this V2 server (e.g. http://127.0.0.1:8000)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        evaluate(Run(args.runs_dir, args.run_id), args.output_dir, args.server_url, Settings())
    except (RunError, ServerError) as error:
        return cli.fail(str(error))
    return 0


if __name__ == "__main__":
    sys.exit(main())
