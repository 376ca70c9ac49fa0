"""cifar10: `evaluate --server-url` (SPEC 1.2 behaviour 6) through a V2 server: it waits for
the model's readiness, sends FP32 tensors over the Open Inference Protocol and records the
same figures as the in-process evaluation.

The server here is a minimal V2 endpoint (stdlib HTTP + onnxruntime on the model file) that
answers 503 to its first readiness polls; the serving patterns test their own servers."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.chapter2_training.cifar10 import checks

NOT_READY_POLLS = 3


class V2Server(ThreadingHTTPServer):
    def __init__(self, model_dir: Path) -> None:
        super().__init__(("127.0.0.1", 0), V2Handler)
        self.name = model_dir.name
        self.session = checks.session(model_dir)
        self.polls = 0
        self.inferences = 0


class V2Handler(BaseHTTPRequestHandler):
    server: V2Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def reply(self, status: int, body: dict[str, Any]) -> None:
        content = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def do_GET(self) -> None:
        if self.path != f"/v2/models/{self.server.name}/ready":
            self.reply(404, {"error": "not found"})
            return
        self.server.polls += 1
        ready = self.server.polls > NOT_READY_POLLS
        self.reply(200 if ready else 503, {"name": self.server.name, "ready": ready})

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        [tensor] = request["inputs"]
        batch = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
        [probabilities] = self.server.session.run(["probabilities"], {"input": batch})
        self.server.inferences += 1
        output = {
            "name": "probabilities",
            "datatype": "FP32",
            "shape": list(probabilities.shape),
            "data": probabilities.ravel().tolist(),
        }
        self.reply(200, {"model_name": self.server.name, "outputs": [output]})


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fake run with preprocess and train done (the runs dir)."""
    runs = tmp_path_factory.mktemp("runs")
    for module, *args in [
        ("src.preprocess", "--dataset", "fake"),
        ("src.train", "--variant", "small", "--epochs", "1"),
    ]:
        result = checks.run_cli(module, *args, "--runs-dir", str(runs), "--run-id", "served")
        assert result.returncode == 0, result.stdout + result.stderr
    return runs


@pytest.fixture
def server(trained: Path) -> Iterator[V2Server]:
    running = V2Server(trained / "served" / "train" / "fake_resnet_small")
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()
    thread.join()


def test_evaluate_through_a_v2_server_equals_onnxruntime(
    trained: Path, server: V2Server, tmp_path: Path
) -> None:
    host, port = server.server_address[:2]
    url = f"http://{host!s}:{port}"
    result = checks.run_cli(
        "src.evaluate",
        *("--runs-dir", str(trained), "--run-id", "served", "--output-dir", str(tmp_path)),
        "--server-url",
        url,
        env={"SERVER_READY_TIMEOUT_S": "20"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert server.polls > NOT_READY_POLLS  # it waited for readiness
    metrics = checks.read_json(trained / "served" / "evaluate" / "metrics.json")
    assert server.inferences == metrics["total_tested"] == 20
    files = sorted((trained / "served" / "preprocess" / "test").glob("*/*.png"))
    model_dir = tmp_path / "fake_resnet_small"
    predicted = checks.probabilities(model_dir, [path.read_bytes() for path in files])
    truth = np.asarray([int(path.parent.name) for path in files])
    assert metrics["accuracy"] == pytest.approx(float((predicted.argmax(axis=1) == truth).mean()))
    document = checks.read_json(trained / "served" / "run.json")
    assert document["steps"]["evaluate"]["outputs"]["evaluated_with"] == url
    assert checks.read_json(model_dir / "metadata.json")["metrics"] == metrics


def test_a_server_that_never_gets_ready_fails_with_one_line(trained: Path, tmp_path: Path) -> None:
    result = checks.run_cli(
        "src.evaluate",
        *("--runs-dir", str(trained), "--run-id", "served", "--output-dir", str(tmp_path)),
        *("--server-url", "http://127.0.0.1:9"),
        env={"SERVER_READY_TIMEOUT_S": "1"},
    )
    assert result.returncode != 0
    assert result.stderr.startswith("error: http://127.0.0.1:9 not ready for fake_resnet_small")
    assert not (tmp_path / "fake_resnet_small").exists()
