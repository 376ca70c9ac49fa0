"""A recording V2 stub that stands in for `pred`: a real HTTP server on a free loopback port.

It answers the V2 model metadata of a model directory (with the versions the test chooses) and
records every request prep sends, answering infer calls as the test says (by default with
fixed probabilities the test knows). Standard library only: the stub must not share code with
the pattern it checks.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.ports import LOOPBACK

Json = dict[str, Any]
# (status, JSON body) of an infer answer, from the request's JSON body
Answer = Callable[[Json], tuple[int, Any]]


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # the parsed JSON body, None for a GET


@dataclass
class RecordingPred:
    metadata: Json  # the model directory's metadata.json
    answer: Answer
    versions: list[str] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    url: str = ""

    def infer_requests(self) -> list[Recorded]:
        return [item for item in self.requests if item.method == "POST"]

    def model_metadata(self) -> Json:
        return {
            "name": self.metadata["name"],
            "versions": self.versions or [self.metadata["version"]],
            "platform": "onnxruntime_onnx",
            "inputs": self.metadata["inputs"],
            "outputs": self.metadata["outputs"],
        }


def probabilities_answer(probabilities: list[list[float]]) -> Answer:
    """A V2 infer answer holding these probabilities, whatever was sent."""

    def answer(request: Json) -> tuple[int, Any]:
        rows, classes = len(probabilities), len(probabilities[0])
        output = {
            "name": "probabilities",
            "datatype": "FP32",
            "shape": [rows, classes],
            "data": [value for row in probabilities for value in row],
        }
        return 200, {"model_name": "stub", "model_version": "stub", "outputs": [output]}

    return answer


def handler_for(stub: RecordingPred) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as pred answers

        def do_GET(self) -> None:
            stub.requests.append(Recorded("GET", self.path, dict(self.headers), None))
            name = stub.metadata["name"]
            if self.path == f"/v2/models/{name}":
                self.reply(200, stub.model_metadata())
            else:
                self.reply(404, {"error": f"no route {self.path}"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            stub.requests.append(Recorded("POST", self.path, dict(self.headers), body))
            self.reply(*stub.answer(body))

        def reply(self, status: int, body: Any) -> None:
            content = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the test reads `requests`

    return Handler


@contextmanager
def recording_pred(model_dir: Path, answer: Answer) -> Iterator[RecordingPred]:
    stub = RecordingPred(json.loads((model_dir / "metadata.json").read_text()), answer)
    server = ThreadingHTTPServer((LOOPBACK, 0), handler_for(stub))
    server.daemon_threads = True
    stub.url = f"http://{LOOPBACK}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
