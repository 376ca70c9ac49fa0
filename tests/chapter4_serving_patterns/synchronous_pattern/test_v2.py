"""V2 on `pred` (SPEC 0.5): conformance with the stock client in JSON and in binary mode (FP32
and BYTES, ≤ 1e-6 against onnxruntime), I-oracles 1 and 2 through BYTES infer with 3 images per
request, the classification extension, the version forms, 404s, 400s and the image rules."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.chapter4_serving_patterns.synchronous_pattern.harness import (
    DATA_DIR,
    MAX_IMAGE_BYTES,
    Pred,
    running_pred,
    v2_fp32_predictor,
    v2_image_body,
    v2_predictor,
)
from tests.support.image_checks import (
    ImageOracle,
    check_accuracy,
    check_variants,
    encode,
    labelled_images,
)

MAX_IMAGES = 8
TOP_2 = {"classification": 2}
HEADER_LENGTH = "Inference-Header-Content-Length"


@pytest.fixture(scope="module")
def pred(oracle: ImageOracle) -> Iterator[Pred]:
    with running_pred({"MAX_IMAGES_PER_REQUEST": str(MAX_IMAGES)}) as running:
        yield running


@pytest.fixture(scope="module")
def client(pred: Pred) -> Iterator[Any]:
    address = urlsplit(pred.url).netloc
    client = triton.InferenceServerClient(url=address, connection_timeout=10, network_timeout=10)
    yield client
    client.close()


@pytest.fixture(scope="module")
def images() -> list[bytes]:
    return [item.data for item in labelled_images(DATA_DIR / "test_png", limit=5)]


def infer_path(oracle: ImageOracle) -> str:
    return f"/v2/models/{oracle.name}/infer"


def test_stock_client_sees_a_live_ready_server_and_model(client: Any, oracle: ImageOracle) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(oracle.name)
    assert client.is_model_ready(oracle.name, oracle.version)
    metadata = client.get_model_metadata(oracle.name)
    assert metadata == {
        "name": oracle.name,
        "versions": [oracle.version],
        "platform": "onnxruntime_onnx",
        "inputs": [
            {"name": "input", "datatype": "FP32", "shape": oracle.metadata["inputs"][0]["shape"]},
            {"name": "image", "datatype": "BYTES", "shape": [-1]},
        ],
        "outputs": [
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(oracle.label_names)]},
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
        ],
    }
    assert client.get_model_metadata(oracle.name, oracle.version) == metadata


def test_server_metadata_advertises_the_extensions(pred: Pred) -> None:
    body = pred.client.get("/v2").json()
    assert body["name"] == "synchronous_pattern"
    assert set(body["extensions"]) == {"binary_tensor_data", "classification"}
    assert pred.client.get("/v2/health/live").json() == {"live": True}
    assert pred.client.get("/v2/health/ready").json() == {"ready": True}


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
@pytest.mark.parametrize("versioned", [False, True], ids=["latest", "versioned"])
def test_stock_client_fp32_infer_equals_onnxruntime(
    client: Any, oracle: ImageOracle, images: list[bytes], binary: bool, versioned: bool
) -> None:
    tensors = oracle.tensors(images)
    tensor = triton.InferInput("input", list(tensors.shape), "FP32")
    tensor.set_data_from_numpy(tensors, binary_data=binary)
    outputs = [triton.InferRequestedOutput("probabilities", binary_data=binary)]
    version = oracle.version if versioned else ""
    result = client.infer(oracle.name, [tensor], model_version=version, outputs=outputs)
    np.testing.assert_allclose(
        result.as_numpy("probabilities"), oracle.run(tensors), rtol=0, atol=1e-6
    )
    assert result.get_response()["model_version"] == oracle.version


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_stock_client_fp32_default_outputs(
    client: Any, oracle: ImageOracle, images: list[bytes], binary: bool
) -> None:
    """No outputs requested: only the model's own output (binary: tritonclient asks for it)."""
    tensors = oracle.tensors(images[:2])
    tensor = triton.InferInput("input", list(tensors.shape), "FP32")
    tensor.set_data_from_numpy(tensors, binary_data=binary)
    result = client.infer(oracle.name, [tensor])
    assert [output["name"] for output in result.get_response()["outputs"]] == ["probabilities"]
    np.testing.assert_allclose(
        result.as_numpy("probabilities"), oracle.run(tensors), rtol=0, atol=1e-6
    )


@pytest.mark.parametrize(
    "encoding", ["json-base64", "binary-base64", "binary-raw"], ids=lambda value: value
)
def test_stock_client_bytes_infer_equals_onnxruntime(
    client: Any, oracle: ImageOracle, images: list[bytes], encoding: str
) -> None:
    binary = encoding.startswith("binary")
    elements = images if encoding == "binary-raw" else [encode(data).encode() for data in images]
    tensor = triton.InferInput("image", [len(images)], "BYTES")
    tensor.set_data_from_numpy(np.array(elements, dtype=np.object_), binary_data=binary)
    outputs = [
        triton.InferRequestedOutput("probabilities", binary_data=binary),
        triton.InferRequestedOutput("label", binary_data=binary),
    ]
    result = client.infer(oracle.name, [tensor], outputs=outputs)
    np.testing.assert_allclose(
        result.as_numpy("probabilities"), oracle.probabilities(images), rtol=0, atol=1e-6
    )
    labels = [str(label.decode() if isinstance(label, bytes) else label)
              for label in result.as_numpy("label")]  # fmt: skip
    assert labels == oracle.labels(images)


def test_stock_client_classification_extension(
    client: Any, oracle: ImageOracle, images: list[bytes]
) -> None:
    tensor = triton.InferInput("image", [len(images)], "BYTES")
    tensor.set_data_from_numpy(np.array(images, dtype=np.object_))
    output = triton.InferRequestedOutput("probabilities", class_count=3)
    result = client.infer(oracle.name, [tensor], outputs=[output])
    ranked = result.as_numpy("probabilities")
    assert ranked.shape == (len(images), 3)
    expected = oracle.probabilities(images)
    for row, entries in enumerate(ranked):
        fields = [entry.decode().split(":") for entry in entries]
        indices = [int(index) for _, index, _ in fields]
        assert indices == np.argsort(-expected[row], kind="stable")[:3].tolist()
        assert [label for _, _, label in fields] == [oracle.label_names[i] for i in indices]
        np.testing.assert_allclose(
            [float(p) for p, _, _ in fields], expected[row][indices], rtol=0, atol=1e-6
        )


def test_i_oracle_1_through_v2_bytes_png(pred: Pred, oracle: ImageOracle) -> None:
    predict = v2_predictor(pred.client, oracle.name, per_request=3)
    report = check_accuracy(predict, oracle, DATA_DIR / "test_png", minimum=0.95, exact=True)
    assert report.count >= 200


def test_i_oracle_1_through_v2_bytes_jpeg(pred: Pred, oracle: ImageOracle) -> None:
    # The issue asks 0.95 for JPEG too (SPEC's I-oracle 1 only 0.93).
    predict = v2_predictor(pred.client, oracle.name, per_request=3)
    assert check_accuracy(predict, oracle, DATA_DIR / "test_jpeg", minimum=0.95).count >= 200


@pytest.mark.parametrize("directory", ["test_png", "test_jpeg"])
def test_i_oracle_1_through_v2_fp32(pred: Pred, oracle: ImageOracle, directory: str) -> None:
    predict = v2_fp32_predictor(pred.client, oracle)
    report = check_accuracy(predict, oracle, DATA_DIR / directory, minimum=0.95, exact=True)
    assert report.count >= 200


def test_i_oracle_2_variants_through_v2(pred: Pred, oracle: ImageOracle) -> None:
    check_variants(v2_predictor(pred.client, oracle.name, per_request=5), DATA_DIR / "sample.png")


def test_bytes_infer_defaults_to_probabilities_and_label(
    pred: Pred, oracle: ImageOracle, images: list[bytes]
) -> None:
    body = {**v2_image_body(images[:3]), "id": "three-images"}
    response = pred.post(infer_path(oracle), body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["id"] == "three-images"
    assert answer["model_name"] == oracle.name
    assert answer["model_version"] == oracle.version
    outputs = {output["name"]: output for output in answer["outputs"]}
    assert list(outputs) == ["probabilities", "label"]
    assert outputs["label"] == {
        "name": "label",
        "datatype": "BYTES",
        "shape": [3],
        "data": oracle.labels(images[:3]),
    }
    assert outputs["probabilities"]["shape"] == [3, len(oracle.label_names)]


def test_the_predict_route_and_v2_give_the_same_numbers(
    pred: Pred, oracle: ImageOracle, images: list[bytes]
) -> None:
    answer = pred.post(infer_path(oracle), v2_image_body(images[:1], ["probabilities"])).json()
    predicted = pred.post("/predict", {"image_data": encode(images[0])}).json()["prediction"]
    assert answer["outputs"][0]["data"] == predicted


def raw_binary_request(header: dict[str, Any], *blocks: bytes) -> tuple[bytes, dict[str, str]]:
    text = json.dumps(header).encode()
    return text + b"".join(blocks), {HEADER_LENGTH: str(len(text))}


def test_binary_response_layout(pred: Pred, oracle: ImageOracle, images: list[bytes]) -> None:
    """Triton's layout, read by hand: JSON header, then the raw little-endian blocks."""
    header = {
        "inputs": [{"name": "image", "datatype": "BYTES", "shape": [2],
                    "parameters": {"binary_data_size": 8 + len(images[0]) + len(images[1])}}],
        "parameters": {"binary_data_output": True},
    }  # fmt: skip
    blocks = [struct.pack("<I", len(data)) + data for data in images[:2]]
    content, headers = raw_binary_request(header, *blocks)
    response = pred.client.post(infer_path(oracle), content=content, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    length = int(response.headers[HEADER_LENGTH])
    answer = json.loads(response.content[:length])
    sizes = [output["parameters"]["binary_data_size"] for output in answer["outputs"]]
    classes = len(oracle.label_names)
    assert sizes[0] == 2 * classes * 4
    rest = response.content[length:]
    assert len(rest) == sum(sizes)
    probabilities = np.frombuffer(rest[: sizes[0]], dtype="<f4").reshape(2, classes)
    np.testing.assert_allclose(probabilities, oracle.probabilities(images[:2]), rtol=0, atol=1e-6)
    labels, offset = [], sizes[0]
    while offset < len(rest):
        (size,) = struct.unpack_from("<I", rest, offset)
        labels.append(rest[offset + 4 : offset + 4 + size].decode())
        offset += 4 + size
    assert labels == oracle.labels(images[:2])


@pytest.mark.parametrize(
    "path",
    [
        "/v2/models/iris_svc",
        "/v2/models/iris_svc/ready",
        "/v2/models/{name}/versions/000000000000",
        "/v2/models/{name}/versions/000000000000/ready",
    ],
)
def test_unknown_model_or_version_is_404(pred: Pred, oracle: ImageOracle, path: str) -> None:
    response = pred.client.get(path.format(name=oracle.name))
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize(
    "path", ["/v2/models/iris_svc/infer", "/v2/models/{name}/versions/000000000000/infer"]
)
def test_infer_on_an_unknown_model_or_version_is_404(
    pred: Pred, oracle: ImageOracle, images: list[bytes], path: str
) -> None:
    response = pred.post(path.format(name=oracle.name), v2_image_body(images[:1]))
    assert response.status_code == 404, response.text


def test_stock_client_sees_the_error_message(client: Any, oracle: ImageOracle) -> None:
    tensor = triton.InferInput("image", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([b"not an image file at all"], dtype=np.object_))
    with pytest.raises(InferenceServerException) as raised:
        client.infer(oracle.name, [tensor])
    assert raised.value.status() == "415"
    assert "not an image" in raised.value.message()


def fp32(shape: list[int], data: Any = None) -> dict[str, Any]:
    values = data if data is not None else [0.5] * int(np.prod(shape))
    return {"inputs": [{"name": "input", "datatype": "FP32", "shape": shape, "data": values}]}


def image(data: list[Any], shape: list[int] | None = None, **extra: Any) -> dict[str, Any]:
    tensor = {"name": "image", "datatype": "BYTES", "shape": shape or [len(data)], "data": data}
    return {"inputs": [{**tensor, **extra}]}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [1], "data": [1]}]}, 400),
        ({"inputs": []}, 400),
        ({"id": "no inputs"}, 400),
        ([1, 2, 3], 400),
        ({"inputs": [fp32([1, 3, 32, 32])["inputs"][0], image(["x"])["inputs"][0]]}, 400),
        ({**image(["eA"]), "outputs": [{"name": "scores"}]}, 400),
        ({**image(["eA"]), "outputs": [{"name": "label", "parameters": TOP_2}]}, 400),
        ({**image(["eA"]), "parameters": {"binary_data_output": "yes"}}, 400),
        (fp32([1, 3, 16, 16]), 400),
        (fp32([3, 32, 32]), 400),
        (fp32([0, 3, 32, 32], []), 400),
        (fp32([1, 3, 32, 32], [0.5] * 100), 400),
        (fp32([1, 3, 32, 32], ["0.5"] * 3072), 400),
        (fp32([1, 3, 32, 32], [True] * 3072), 400),
        ({"inputs": [{**fp32([1, 3, 32, 32])["inputs"][0], "datatype": "FP64"}]}, 400),
        (image(["eA"], datatype="FP32"), 400),
        (image(["eA", "eA"], shape=[3]), 400),
        (image(["eA"], shape=[1, 1]), 400),
        (image([42]), 400),
        (image(["!!!not base64!!!"]), 422),
        (image([encode(b"plain text, not an image")]), 415),
        (image([encode(b"\x89PNG\r\n\x1a\n" + b"\0" * MAX_IMAGE_BYTES)]), 413),
        (image(["eA"] * (MAX_IMAGES + 1)), 413),
        (fp32([MAX_IMAGES + 1, 3, 32, 32]), 413),
    ],
    ids=[
        "unknown-input", "no-inputs", "missing-inputs", "not-an-object", "two-inputs",
        "unknown-output", "classification-on-label", "bad-binary-flag", "wrong-image-size",
        "no-batch-axis", "no-rows", "shape-vs-data", "strings", "bools", "fp64", "image-as-fp32",
        "bytes-shape-vs-data", "bytes-rank-2", "bytes-not-strings", "bad-base64", "not-an-image",
        "oversized-image", "too-many-images", "too-many-rows",
    ],
)  # fmt: skip
def test_a_bad_infer_request_gets_its_status(
    pred: Pred, oracle: ImageOracle, body: Any, status: int
) -> None:
    response = pred.post(infer_path(oracle), body)
    assert response.status_code == status, response.text
    envelope = response.json()
    assert envelope["error"]
    assert envelope["code"] in {"invalid_input", "payload_too_large", "unsupported_media_type"}


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_fp32_data_is_400(pred: Pred, oracle: ImageOracle, value: str) -> None:
    values = ", ".join(["0.5"] * 3071 + [value])
    content = (
        '{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, 32, 32], '
        f'"data": [{values}]}}]}}'
    )
    response = pred.client.post(infer_path(oracle), content=content)
    assert response.status_code == 400, response.text
    assert response.json()["details"][0]["loc"] == ["body", "inputs", 0, "data", 3071]


def fp32_binary_header(size: int, shape: list[int] | None = None) -> dict[str, Any]:
    return {
        "inputs": [{"name": "input", "datatype": "FP32", "shape": shape or [1, 3, 32, 32],
                    "parameters": {"binary_data_size": size}}]
    }  # fmt: skip


BLOCK = np.zeros(3072, dtype="<f4").tobytes()
CUT_BYTES_ELEMENT = raw_binary_request(
    {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                 "parameters": {"binary_data_size": 6}}]},
    struct.pack("<I", 100) + b"ab",  # an element of 100 bytes, 2 of them sent
)  # fmt: skip


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (raw_binary_request(fp32_binary_header(len(BLOCK)), BLOCK)[0], {}),
        (b"{}", {HEADER_LENGTH: "9999"}),
        (b"{}", {HEADER_LENGTH: "two"}),
        raw_binary_request(fp32_binary_header(len(BLOCK) - 4), BLOCK[:-4]),
        raw_binary_request(fp32_binary_header(len(BLOCK) + 4), BLOCK),
        raw_binary_request(fp32_binary_header(len(BLOCK)), BLOCK, b"trailing"),
        raw_binary_request(fp32_binary_header(-1), BLOCK),
        raw_binary_request(fp32_binary_header(4), np.array([np.nan], "<f4").tobytes()),
        CUT_BYTES_ELEMENT,
    ],
    ids=[
        "no-header-length",
        "header-beyond-body",
        "header-not-a-number",
        "short-block",
        "block-beyond-body",
        "trailing-bytes",
        "negative-size",
        "nan",
        "bytes-element-cut",
    ],
)
def test_a_malformed_binary_request_is_400(
    pred: Pred, oracle: ImageOracle, content: bytes, headers: dict[str, str]
) -> None:
    response = pred.client.post(infer_path(oracle), content=content, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_input"


def test_a_raw_image_beyond_the_limit_is_413(pred: Pred, oracle: ImageOracle) -> None:
    data = b"\x89PNG\r\n\x1a\n" + b"\0" * MAX_IMAGE_BYTES
    header = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                          "parameters": {"binary_data_size": 4 + len(data)}}]}  # fmt: skip
    content, headers = raw_binary_request(header, struct.pack("<I", len(data)) + data)
    response = pred.client.post(infer_path(oracle), content=content, headers=headers)
    assert response.status_code == 413, response.text
