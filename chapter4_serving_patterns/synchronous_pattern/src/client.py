"""The synchronous client: send one image, wait for the answer, print the top-k labels.

    python -m src.client --image-file data/sample.png [--protocol rest|v2] [--url URL]
                         [--timeout-s 5] [--metadata] [--top-k 3] [--model digits_resnet]
    3 (0.99), 5 (0.00), 8 (0.00)

`rest` posts the base64 file to `POST /predict` (I-API) and names the classes with `GET /label`;
`v2` sends it as the BYTES input `image` to `POST /v2/models/<model>/infer` and asks for the
top-k with the classification extension (the server names them). `--metadata` prints the
model's metadata instead (`GET /metadata`, or `GET /v2/models/<model>`). The URL, model name and
time-out default to PRED_URL, MODEL_NAME and CLIENT_TIMEOUT_S (src/configurations.py).

Exit status 0 on success; 1 when the server refuses the request (its status, code and message
on one line); 2 when it cannot be reached or the image file cannot be read. No traceback.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path
from typing import Any

import httpx

from src.configurations import ClientSettings

REFUSED, UNREACHABLE = 1, 2


class ClientError(Exception):
    """What went wrong, in one line, and the exit status it maps to."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def parse_arguments(argv: list[str] | None, settings: ClientSettings) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m src.client", description="classify one image with the pred server"
    )
    parser.add_argument("--image-file", type=Path, help="the image (PNG, JPEG, GIF, BMP, WebP)")
    parser.add_argument("--protocol", choices=["rest", "v2"], default="rest")
    parser.add_argument("--url", default=settings.pred_url, help="pred's base URL (PRED_URL)")
    parser.add_argument("--timeout-s", type=float, default=settings.client_timeout_s)
    parser.add_argument("--metadata", action="store_true", help="print the model's metadata")
    parser.add_argument("--top-k", type=int, default=3, help="how many labels to print")
    parser.add_argument("--model", default=settings.model_name, help="model name (V2 paths)")
    arguments = parser.parse_args(argv)
    if not arguments.metadata and arguments.image_file is None:
        parser.error("--image-file is required (or --metadata)")
    if arguments.top_k < 1:
        parser.error("--top-k must be at least 1")
    return arguments


def call(client: httpx.Client, method: str, path: str, body: Any = None) -> Any:
    """The JSON answer, or ClientError naming what the server or the network said."""
    try:
        response = client.request(method, path, json=body)
    except httpx.TimeoutException as error:
        message = f"{client.base_url} did not answer within {client.timeout.read} s"
        raise ClientError(message, UNREACHABLE) from error
    except httpx.HTTPError as error:
        raise ClientError(f"cannot reach {client.base_url}: {error}", UNREACHABLE) from error
    if response.status_code >= 400:
        raise ClientError(f"{method} {path}: {refusal(response)}", REFUSED)
    try:
        return response.json()
    except ValueError as error:
        raise ClientError(f"{method} {path}: the answer is not JSON", REFUSED) from error


def refusal(response: httpx.Response) -> str:
    try:
        body = response.json()
        return f"{response.status_code} {body.get('code', '')}: {body.get('error', '')}".strip()
    except (ValueError, AttributeError):
        return f"{response.status_code} {response.text[:200]}"


def top_k_rest(client: httpx.Client, image: str, top_k: int) -> list[tuple[str, float]]:
    probabilities = call(client, "POST", "/predict", {"image_data": image})["prediction"]
    labels = call(client, "GET", "/label")
    order = sorted(range(len(probabilities)), key=lambda index: -probabilities[index])
    return [(labels[str(index)], probabilities[index]) for index in order[:top_k]]


def top_k_v2(client: httpx.Client, model: str, image: str, top_k: int) -> list[tuple[str, float]]:
    metadata = call(client, "GET", f"/v2/models/{model}")
    probabilities = metadata["outputs"][0]["name"]  # the model's own output
    body = {
        "inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": [image]}],
        "outputs": [{"name": probabilities, "parameters": {"classification": top_k}}],
    }
    answer = call(client, "POST", f"/v2/models/{model}/infer", body)
    ranked = []
    for text in answer["outputs"][0]["data"]:  # "probability:index:label"
        probability, _, label = str(text).split(":", 2)
        ranked.append((label, float(probability)))
    return ranked


def run(arguments: argparse.Namespace) -> str:
    with httpx.Client(base_url=arguments.url, timeout=arguments.timeout_s) as client:
        if arguments.metadata:
            path = "/metadata" if arguments.protocol == "rest" else f"/v2/models/{arguments.model}"
            return json.dumps(call(client, "GET", path), indent=2)
        try:
            image = base64.b64encode(arguments.image_file.read_bytes()).decode("ascii")
        except OSError as error:
            message = f"cannot read {arguments.image_file}: {error.strerror}"
            raise ClientError(message, UNREACHABLE) from error
        if arguments.protocol == "rest":
            ranked = top_k_rest(client, image, arguments.top_k)
        else:
            ranked = top_k_v2(client, arguments.model, image, arguments.top_k)
    return ", ".join(f"{label} ({probability:.2f})" for label, probability in ranked)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv, ClientSettings())
    try:
        print(run(arguments))
    except ClientError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.status
    return 0


if __name__ == "__main__":
    sys.exit(main())
