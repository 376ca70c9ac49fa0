"""The pattern end to end: proxy (two workers) in front of pred, real Redis, digits_resnet.

SPEC 3.8 acceptance tests 1 (MISS then HIT, one inference), 2 (20 concurrent identical requests
on a cold key: one MISS, one inference), 3 (an item id and its base64 share one key) and 6 (id
rules of SPEC 3.9 test 3, I-oracle 1 through the item ids), and what follows from behaviour 1:
errors are never cached, the value answers both /predict and /predict/label, a dead holder's
lock expires. Inference counts come from pred's /metrics, keys straight from Redis.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import redis
from PIL import Image

from tests.chapter4_serving_patterns.prediction_cache_pattern.harness import (
    DATA_DIR,
    PATTERN,
    cache_key,
    cache_keys,
    copy_items,
    inferences,
    sha256,
    with_nonce,
)
from tests.support.envelope import expect_error
from tests.support.image_checks import (
    Answer,
    ImageOracle,
    check_accuracy,
    check_input_refusals,
    encode,
    labelled_images,
    rest_predictor,
)
from tests.support.launcher import RunningPattern, launch

CONCURRENT = 20
LOCK_PREFIX = "prediction_cache_lock"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, digits_dir: Path) -> Path:
    """A copy of data/items with a symlink leading out of it, to a real image (so that a read
    through it would succeed) and a sentinel that no request may reach."""
    root = tmp_path_factory.mktemp("prediction_cache")
    directory = copy_items(root / "items")
    outside = root / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes((directory / "0000.png").read_bytes())
    (directory / "escape.png").symlink_to(outside / "secret.png")
    return directory


@pytest.fixture(scope="module")
def running(data_dir: Path, cache_redis_url: str) -> Iterator[RunningPattern]:
    env = {"WORKERS": "2", "REDIS_URL": cache_redis_url, "DATA_DIR": str(data_dir)}
    with launch(PATTERN, env=env) as running:
        yield running


@pytest.fixture(scope="module")
def proxy(running: RunningPattern) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=running.url(), timeout=30.0) as client:
        yield client


@pytest.fixture(scope="module")
def pred_url(running: RunningPattern) -> str:
    return running.url("pred")


def item_body(data_dir: Path, item_id: str) -> bytes:
    return (data_dir / f"{item_id}.png").read_bytes()


# --- acceptance test 1: MISS, then HIT with the same body and no second inference ------------


def test_first_request_misses_second_hits_with_the_same_body_and_one_inference(
    proxy: httpx.Client,
    pred_url: str,
    data_dir: Path,
    oracle: ImageOracle,
    cache_redis: redis.Redis,
) -> None:
    before = inferences(pred_url)
    first = proxy.post("/predict", json={"data": "0007"})
    second = proxy.post("/predict", json={"data": "0007"})
    assert first.status_code == second.status_code == 200, first.text
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("MISS", "HIT")
    assert second.content == first.content
    assert inferences(pred_url) - before == 1
    # The answer is the model's, and the entry is where SPEC 3.8 says, with its TTL.
    image = item_body(data_dir, "0007")
    expected = oracle.probabilities([image])[0]
    np.testing.assert_allclose(first.json()["prediction"], expected, rtol=0, atol=1e-6)
    key = cache_key(oracle.name, oracle.version, image)
    assert json.loads(cache_redis.get(key) or b"null") == first.json()
    assert 0 < cache_redis.ttl(key) <= 3600
    assert first.headers["X-Model-Version"] == oracle.version


def test_the_cached_value_answers_predict_label_too(
    proxy: httpx.Client, pred_url: str, oracle: ImageOracle, data_dir: Path
) -> None:
    before = inferences(pred_url)
    label = proxy.post("/predict/label", json={"data": "0008"})
    full = proxy.post("/predict", json={"data": "0008"})
    assert (label.headers["X-Cache"], full.headers["X-Cache"]) == ("MISS", "HIT")
    [expected] = oracle.labels([item_body(data_dir, "0008")])
    assert label.json() == {"prediction": expected} == {"prediction": full.json()["label"]}
    assert inferences(pred_url) - before == 1


# --- acceptance test 2: single-flight across two workers ---------------------------------------


def test_concurrent_identical_requests_on_a_cold_key_run_one_inference(
    proxy: httpx.Client, pred_url: str, data_dir: Path
) -> None:
    image = with_nonce(item_body(data_dir, "0000"), "concurrent")
    body = {"image_data": encode(image)}
    before = inferences(pred_url)
    with ThreadPoolExecutor(CONCURRENT) as pool:
        responses = list(pool.map(lambda _: proxy.post("/predict", json=body), range(CONCURRENT)))
    assert all(response.status_code == 200 for response in responses), responses[0].text
    results = Counter(response.headers["X-Cache"] for response in responses)
    assert results["MISS"] == 1, results
    assert set(results) <= {"MISS", "HIT", "COALESCED"}, results
    assert len({response.content for response in responses}) == 1
    assert inferences(pred_url) - before == 1


def test_a_lock_whose_holder_died_expires(
    proxy: httpx.Client,
    pred_url: str,
    data_dir: Path,
    oracle: ImageOracle,
    cache_redis: redis.Redis,
) -> None:
    """A lock nobody will release (its holder died) delays the key by its PX at most: the next
    request takes it over once it expires, well within CACHE_WAIT_MS (2 s), and computes."""
    image = with_nonce(item_body(data_dir, "0000"), "dead-holder")
    lock = cache_key(oracle.name, oracle.version, image).replace("prediction_cache", LOCK_PREFIX, 1)
    assert cache_redis.set(lock, "a holder that died", nx=True, px=300)
    before = inferences(pred_url)
    response = proxy.post("/predict", json={"image_data": encode(image)})
    assert response.status_code == 200, response.text
    assert response.headers["X-Cache"] == "MISS"
    assert inferences(pred_url) - before == 1
    assert cache_redis.exists(lock) == 0


# --- acceptance test 3: one key per image, however it is sent ---------------------------------


def test_an_item_id_and_the_same_file_as_base64_share_one_key(
    proxy: httpx.Client, pred_url: str, data_dir: Path, cache_redis: redis.Redis
) -> None:
    image = item_body(data_dir, "0011")
    before = inferences(pred_url)
    by_id = proxy.post("/predict", json={"data": "0011"})
    by_content = proxy.post("/predict", json={"image_data": encode(image)})
    url_safe = base64.urlsafe_b64encode(image).decode().rstrip("=")
    by_url_safe = proxy.post("/predict", json={"image_data": url_safe})
    assert [r.headers["X-Cache"] for r in (by_id, by_content, by_url_safe)] == [
        "MISS",
        "HIT",
        "HIT",
    ]
    assert by_id.content == by_content.content == by_url_safe.content
    assert inferences(pred_url) - before == 1
    assert len(cache_keys(cache_redis, image)) == 1


def test_the_same_pixels_in_other_bytes_are_another_key(
    proxy: httpx.Client, data_dir: Path
) -> None:
    """The canonical input is the file's sha256, not its pixels (SPEC 3.8 behaviour 1)."""
    image = with_nonce(item_body(data_dir, "0012"), "other bytes")
    proxy.post("/predict", json={"data": "0012"})
    response = proxy.post("/predict", json={"image_data": encode(image)})
    assert response.headers["X-Cache"] == "MISS"


# --- errors are never cached -----------------------------------------------------------------


def test_errors_are_never_cached(
    proxy: httpx.Client, pred_url: str, cache_redis: redis.Redis
) -> None:
    not_an_image = b"this is not an image file at all"
    for _ in range(2):
        expect_error(
            proxy.post("/predict", json={"image_data": encode(not_an_image)}),
            415,
            "unsupported_media_type",
        )
    assert cache_keys(cache_redis, not_an_image) == []
    locks = list(cache_redis.scan_iter(match=f"{LOCK_PREFIX}:*:{sha256(not_an_image)}"))
    assert locks == []  # released at once, not left to expire


def test_bad_input_is_refused_before_the_cache(proxy: httpx.Client) -> None:
    check_input_refusals(proxy)
    bodies: list[object] = [{}, {"data": "0000", "image_data": "x"}, {"other": 1}, {"data": 7}, []]
    for body in bodies:
        expect_error(proxy.post("/predict", json=body), 422, "invalid_input")
    expect_error(
        proxy.post("/predict", content=b"{", headers={"Content-Type": "application/json"}),
        422,
        "invalid_input",
    )


# --- acceptance test 6: item ids (SPEC 3.9 test 3) ----------------------------------------------


@pytest.mark.parametrize(
    "item_id",
    ["../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "/etc/passwd", "a/b", "", "a" * 65, "0000.png"],
)
def test_malformed_item_ids_are_422(proxy: httpx.Client, item_id: str) -> None:
    for path in ("/predict", "/predict/label"):
        body = expect_error(proxy.post(path, json={"data": item_id}), 422, "invalid_input")
        assert body["details"][0]["loc"] == ["body", "data"]


def test_an_id_of_64_characters_is_well_formed_and_unknown(proxy: httpx.Client) -> None:
    expect_error(proxy.post("/predict", json={"data": "a" * 64}), 404, "not_found")


def test_a_symlink_leading_out_of_data_dir_is_404(proxy: httpx.Client) -> None:
    expect_error(proxy.post("/predict", json={"data": "escape"}), 404, "not_found")
    assert "escape" not in proxy.get("/data", params={"limit": 1000}).json()["ids"]


def test_data_lists_the_item_ids_page_by_page(proxy: httpx.Client, data_dir: Path) -> None:
    expected = sorted(path.stem for path in data_dir.glob("*.png") if not path.is_symlink())
    page = proxy.get("/data", params={"limit": 5, "offset": 2}).json()
    assert page == {"ids": expected[2:7], "total": len(expected), "limit": 5, "offset": 2}
    everything = proxy.get("/data", params={"limit": 1000}).json()
    assert everything["ids"] == expected
    expect_error(proxy.get("/data", params={"limit": -1}), 422, "invalid_input")


def test_png_accuracy_through_item_ids_agrees_with_onnxruntime(
    proxy: httpx.Client, oracle: ImageOracle, data_dir: Path
) -> None:
    """I-oracle 1 through `{"data": "<item id>"}`: ≥ 0.95, labels equal onnxruntime's."""
    ids = {item.data: item.item_id for item in labelled_images(data_dir)}

    def by_item_id(images: Sequence[bytes]) -> list[Answer]:
        answers = []
        for image in images:
            response = proxy.post("/predict", json={"data": ids[image]})
            assert response.status_code == 200, response.text
            body = response.json()
            answers.append(Answer(body["prediction"], body["label"]))
        return answers

    report = check_accuracy(by_item_id, oracle, data_dir, minimum=0.95, exact=True)
    assert report.count >= 200


def test_jpeg_accuracy_through_base64(proxy: httpx.Client, oracle: ImageOracle) -> None:
    report = check_accuracy(rest_predictor(proxy), oracle, DATA_DIR / "test_jpeg", minimum=0.95)
    assert report.count >= 200


def test_variants_of_one_picture_are_other_keys_with_the_same_label(
    proxy: httpx.Client, data_dir: Path
) -> None:
    with Image.open(data_dir / "0000.png") as opened:
        gray = opened.convert("L")
    path = data_dir.parent / "gray.png"
    gray.save(path)
    plain = proxy.post("/predict/label", json={"data": "0000"}).json()
    response = proxy.post("/predict/label", json={"image_data": encode(path.read_bytes())})
    assert response.headers["X-Cache"] == "MISS"
    assert response.json() == plain


# --- the rest of the I-API --------------------------------------------------------------------


def test_predict_test_is_item_0000_through_the_cache(
    proxy: httpx.Client, oracle: ImageOracle, data_dir: Path
) -> None:
    answer = proxy.get("/predict/test")
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Cache"] in ("MISS", "HIT")
    again = proxy.get("/predict/test")
    assert again.headers["X-Cache"] == "HIT"
    assert again.content == answer.content == proxy.post("/predict", json={"data": "0000"}).content
    [label] = oracle.labels([item_body(data_dir, "0000")])
    assert proxy.get("/predict/test/label").json() == {"prediction": label}


def test_ready_metadata_label_and_metrics(proxy: httpx.Client, oracle: ImageOracle) -> None:
    ready = proxy.get("/ready").json()
    assert ready["redis"] == "ok"
    assert ready["pred"]["version"] == oracle.version
    metadata = proxy.get("/metadata").json()
    assert metadata["model"] == {"name": oracle.name, "version": oracle.version}
    assert metadata["preprocessing"] == oracle.metadata["preprocessing"]
    assert metadata["prediction_structure"] == "(1,10)"
    assert proxy.get("/label").json() == json.loads((oracle.model_dir / "label.json").read_text())
    assert proxy.get("/health").json() == {"health": "ok"}
    proxy.post("/predict", json={"data": "0000"})
    metrics = proxy.get("/metrics").text
    assert 'cache_requests_total{result="HIT"}' in metrics
    assert "cache_lookup_seconds_bucket" in metrics
