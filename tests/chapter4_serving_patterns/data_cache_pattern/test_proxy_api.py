"""The pattern end to end, proxy in front of pred with a real Redis, digits_resnet: SPEC 3.9
acceptance tests 1, 3 and 4 (the touched file of test 2 too), the I-API routes against
onnxruntime, and the exact 4xx of every malformed or unsafe item id.

The launch serves a private copy of data/ with two additions beside and inside it: a real PNG
outside DATA_DIR (the sentinel) and a symlink in DATA_DIR pointing at it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import redis

from tests.chapter4_serving_patterns.data_cache_pattern.harness import (
    CACHE_HEADER,
    MODEL_DIR,
    PATTERN,
    cache_result,
    copy_items,
    expected_key,
    item_predictor,
    metadata_of,
    metric_total,
    parse_entry,
    predict_item,
    predictions_served,
    preprocessing_sha256,
    redis_db_url,
    touch,
)
from tests.support.envelope import expect_error
from tests.support.image_checks import ImageOracle, check_accuracy, encode, labelled_images
from tests.support.launcher import RunningPattern, launch

REDIS_DB = 7
TTL_S = 600
TRAVERSAL_IDS = ["../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "/etc/passwd", "a/b", "", "a" * 65]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp")


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(DATA_DIR, sentinel): the items, `escape.png` → the sentinel outside, `inside.png` → an
    item inside."""
    root = tmp_path_factory.mktemp("data_cache")
    data_dir = copy_items(root / "items")
    sentinel = root / "secret.png"
    shutil.copyfile(data_dir / "0001.png", sentinel)  # a valid image: reading it would succeed
    (data_dir / "escape.png").symlink_to(sentinel)
    (data_dir / "inside.png").symlink_to(data_dir / "0002.png")
    return data_dir, sentinel


@pytest.fixture(scope="module")
def cache_url(redis_url: str) -> str:
    url = redis_db_url(redis_url, REDIS_DB)
    with redis.Redis.from_url(url) as client:
        client.flushdb()
    return url


@pytest.fixture(scope="module")
def running(
    oracle: ImageOracle, layout: tuple[Path, Path], cache_url: str
) -> Iterator[RunningPattern]:
    data_dir, _ = layout
    env = {"DATA_DIR": str(data_dir), "REDIS_URL": cache_url, "CACHE_TTL_S": str(TTL_S)}
    with launch(PATTERN, env=env) as running:
        yield running


@pytest.fixture(scope="module")
def proxy(running: RunningPattern) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=running.url(), timeout=30.0) as client:
        yield client


@pytest.fixture(scope="module")
def pred(running: RunningPattern) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=running.url("pred"), timeout=30.0) as client:
        yield client


@pytest.fixture(scope="module")
def store(cache_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(cache_url)
    yield client
    client.close()


def forget_access_time(path: Path) -> None:
    """atime 0: under relatime the next read of the file sets it again, a stat does not."""
    os.utime(path, ns=(0, path.stat().st_mtime_ns))


def access_times_recorded(directory: Path) -> bool:
    """False where reads leave no trace (a noatime mount): atime checks would prove nothing."""
    probe = directory / "atime-probe.bin"
    probe.write_bytes(b"probe")
    forget_access_time(probe)
    probe.read_bytes()
    recorded = probe.stat().st_atime_ns > 0
    probe.unlink()
    return recorded


# --- acceptance 1: MISS then HIT, and what the cache holds -------------------------------------


def test_miss_then_hit_with_identical_answers_and_the_model_run_each_time(
    proxy: httpx.Client, pred: httpx.Client, oracle: ImageOracle, layout: tuple[Path, Path]
) -> None:
    data_dir, _ = layout
    before = predictions_served(pred)
    first = predict_item(proxy, "0003")
    second = predict_item(proxy, "0003")
    assert (cache_result(first), cache_result(second)) == ("MISS", "HIT")
    assert first.content == second.content
    # The cache holds the model's input, not its answer: pred ran both times.
    assert predictions_served(pred) == before + 2
    expected = oracle.probabilities([(data_dir / "0003.png").read_bytes()])[0]
    np.testing.assert_allclose(first.json()["prediction"], expected, rtol=0, atol=1e-6)
    assert second.headers["X-Model-Name"] == oracle.name
    assert second.headers["X-Model-Version"] == oracle.version


def test_the_cached_value_is_the_reference_tensor_as_raw_float32_bytes(
    proxy: httpx.Client, store: redis.Redis, oracle: ImageOracle, layout: tuple[Path, Path]
) -> None:
    data_dir, _ = layout
    item = data_dir / "0005.png"
    assert cache_result(predict_item(proxy, "0005")) == "MISS"
    key = expected_key(MODEL_DIR, item)
    value = store.get(key)
    assert isinstance(value, bytes), f"no value under {key}: {store.keys('data_cache:*')[:5]}"
    dtype, shape, raw, header = parse_entry(value)
    assert (dtype, shape) == ("<f4", (3, 32, 32))
    assert len(raw) == 3 * 32 * 32 * 4
    assert header <= 32, f"a header of {header} bytes"
    reference = oracle.tensors([item.read_bytes()])[0]
    assert np.array_equal(np.frombuffer(raw, dtype="<f4").reshape(shape), reference)
    assert 0 < store.ttl(key) <= TTL_S
    # The model version is not part of the key (SPEC 3.9 behaviour 3).
    assert oracle.version not in key and oracle.name not in key


def test_a_hit_reads_no_file_a_miss_does(proxy: httpx.Client, layout: tuple[Path, Path]) -> None:
    data_dir, _ = layout
    if not access_times_recorded(data_dir.parent):
        pytest.skip("the file system does not record access times (noatime)")
    item = data_dir / "0006.png"
    forget_access_time(item)
    assert cache_result(predict_item(proxy, "0006")) == "MISS"
    assert item.stat().st_atime_ns > 0, "the miss read the file"
    forget_access_time(item)
    assert cache_result(predict_item(proxy, "0006")) == "HIT"
    assert item.stat().st_atime_ns == 0, "the hit read the file"


def test_a_touched_file_misses_then_hits_again(
    proxy: httpx.Client, store: redis.Redis, layout: tuple[Path, Path]
) -> None:
    data_dir, _ = layout
    item = data_dir / "0007.png"
    predict_item(proxy, "0007")
    assert cache_result(predict_item(proxy, "0007")) == "HIT"
    touch(item)
    assert cache_result(predict_item(proxy, "0007")) == "MISS"
    assert store.exists(expected_key(MODEL_DIR, item))
    assert cache_result(predict_item(proxy, "0007")) == "HIT"


def test_predict_label_shares_the_cache(proxy: httpx.Client) -> None:
    first = predict_item(proxy, "0008", "/predict/label")
    answer = predict_item(proxy, "0008")
    assert (cache_result(first), cache_result(answer)) == ("MISS", "HIT")
    assert first.json() == {"prediction": answer.json()["label"]}


# --- acceptance 3: ids are names, never paths --------------------------------------------------


@pytest.mark.parametrize("path", ["/predict", "/predict/label"])
@pytest.mark.parametrize("item_id", TRAVERSAL_IDS, ids=repr)
def test_malformed_ids_are_422(proxy: httpx.Client, path: str, item_id: str) -> None:
    body = expect_error(proxy.post(path, json={"data": item_id}), 422, "invalid_input")
    assert body["details"][0]["loc"] == ["body", "data"]


@pytest.mark.parametrize(
    "body",
    [{"data": 7}, {"data": None}, {"data": ["0000"]}, {}, {"data": "0000", "image_data": "x"}],
    ids=repr,
)
def test_bodies_without_exactly_one_id_string_are_422(proxy: httpx.Client, body: object) -> None:
    expect_error(proxy.post("/predict", json=body), 422, "invalid_input")


def test_unknown_ids_and_symlinks_out_of_data_dir_are_404_and_the_sentinel_is_never_read(
    proxy: httpx.Client, layout: tuple[Path, Path]
) -> None:
    _, sentinel = layout
    forget_access_time(sentinel)
    for item_id in ["escape", "secret", "missing", "labels"]:
        expect_error(proxy.post("/predict", json={"data": item_id}), 404, "not_found")
    for item_id in [*TRAVERSAL_IDS, "../secret", "..%2Fsecret"]:
        expect_error(proxy.post("/predict", json={"data": item_id}), 422, "invalid_input")
    assert "escape" not in proxy.get("/data", params={"limit": 1000}).json()["ids"]
    if access_times_recorded(sentinel.parent):
        assert sentinel.stat().st_atime_ns == 0, "a request read the file outside DATA_DIR"


def test_a_symlink_inside_data_dir_is_an_item(
    proxy: httpx.Client, oracle: ImageOracle, layout: tuple[Path, Path]
) -> None:
    data_dir, _ = layout
    answer = predict_item(proxy, "inside").json()
    expected = oracle.probabilities([(data_dir / "0002.png").read_bytes()])[0]
    np.testing.assert_allclose(answer["prediction"], expected, rtol=0, atol=1e-6)


# --- acceptance 4: I-oracle 1 through item ids ---------------------------------------------------


def test_accuracy_and_exact_agreement_through_item_ids_then_all_hits(
    proxy: httpx.Client, oracle: ImageOracle, layout: tuple[Path, Path]
) -> None:
    data_dir, _ = layout
    report = check_accuracy(
        item_predictor(proxy, data_dir), oracle, data_dir, minimum=0.95, exact=True
    )
    assert report.count >= 200
    results = {
        cache_result(predict_item(proxy, item.item_id)) for item in labelled_images(data_dir)
    }
    assert results == {"HIT"}


# --- the other routes ---------------------------------------------------------------------------


def test_data_lists_every_item_id_in_pages(proxy: httpx.Client, layout: tuple[Path, Path]) -> None:
    data_dir, _ = layout
    expected = sorted(
        path.stem
        for path in data_dir.iterdir()
        if path.suffix in IMAGE_SUFFIXES and path.resolve().parent == data_dir.resolve()
    )
    everything = proxy.get("/data", params={"limit": 1000}).json()
    assert everything == {"ids": expected, "total": len(expected), "limit": 1000, "offset": 0}
    first = proxy.get("/data").json()
    assert first["ids"] == expected[:100] and first["limit"] == 100
    page = proxy.get("/data", params={"limit": 3, "offset": 10}).json()
    assert page["ids"] == expected[10:13]
    for params in ({"limit": -1}, {"limit": 1001}, {"offset": -1}, {"limit": "x"}):
        expect_error(proxy.get("/data", params=params), 422, "invalid_input")


def test_predict_test_is_item_0000_through_the_cache(
    proxy: httpx.Client, oracle: ImageOracle, layout: tuple[Path, Path]
) -> None:
    data_dir, _ = layout
    image = (data_dir / "0000.png").read_bytes()
    [label] = oracle.labels([image])
    answer = proxy.get("/predict/test")
    assert answer.status_code == 200
    assert answer.headers[CACHE_HEADER] in ("MISS", "HIT")
    np.testing.assert_allclose(
        answer.json()["prediction"], oracle.probabilities([image])[0], rtol=0, atol=1e-6
    )
    again = proxy.get("/predict/test/label")
    assert again.json() == {"prediction": label}
    assert again.headers[CACHE_HEADER] == "HIT"


def test_an_inline_image_is_predicted_without_the_cache(
    proxy: httpx.Client, oracle: ImageOracle, layout: tuple[Path, Path]
) -> None:
    data_dir, _ = layout
    image = (data_dir / "0009.png").read_bytes()
    for _ in range(2):
        answer = proxy.post("/predict", json={"image_data": encode(image)})
        assert answer.status_code == 200, answer.text
        assert answer.headers[CACHE_HEADER] == "BYPASS"
        np.testing.assert_allclose(
            answer.json()["prediction"], oracle.probabilities([image])[0], rtol=0, atol=1e-6
        )
    expect_error(proxy.post("/predict", json={"image_data": "%%%"}), 422, "invalid_input")
    not_image = encode(b"not an image at all")
    expect_error(
        proxy.post("/predict", json={"image_data": not_image}), 415, "unsupported_media_type"
    )


def test_metadata_label_and_ready(proxy: httpx.Client, oracle: ImageOracle) -> None:
    metadata = metadata_of(MODEL_DIR)
    answer = proxy.get("/metadata").json()
    assert answer["model"] == {
        "name": metadata["name"],
        "version": metadata["version"],
        "sha256": metadata["sha256"],
    }
    assert answer["preprocessing"] == metadata["preprocessing"]
    assert answer["preprocessing_sha256"] == preprocessing_sha256(MODEL_DIR)
    assert answer["prediction_structure"] == f"(1,{len(metadata['labels'])})"
    assert proxy.get("/label").json() == metadata["labels"]
    ready = proxy.get("/ready").json()
    assert ready["redis"] == {"status": "ok"}
    assert (ready["pred"]["model"], ready["pred"]["version"]) == (oracle.name, oracle.version)
    assert proxy.get("/health").json() == {"health": "ok"}


def test_cache_metrics_count_each_result(proxy: httpx.Client, layout: tuple[Path, Path]) -> None:
    data_dir, _ = layout
    touch(data_dir / "0010.png")  # a new identity: whatever ran before, the next is a miss

    def count(result: str) -> float:
        return metric_total(proxy, f'data_cache_requests_total{{result="{result}"}}')

    before = {result: count(result) for result in ("hit", "miss", "bypass")}
    predict_item(proxy, "0010")
    predict_item(proxy, "0010")
    image = encode(b"\x89PNG broken")
    proxy.post("/predict", json={"image_data": image})  # refused: counted as nothing
    after = {result: count(result) for result in ("hit", "miss", "bypass")}
    assert after == {
        "hit": before["hit"] + 1,
        "miss": before["miss"] + 1,
        "bypass": before["bypass"],
    }
    assert metric_total(proxy, 'data_cache_lookup_seconds_count{outcome="hit"}') >= 1
    assert metric_total(proxy, 'data_cache_lookup_seconds_count{outcome="miss"}') >= 1
