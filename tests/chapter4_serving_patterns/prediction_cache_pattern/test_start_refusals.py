"""The proxy refuses, at start and with one CRITICAL log line naming the path, what it cannot
serve: a DATA_DIR that is missing, or whose item 0000 (GET /predict/test) is missing or not an
image, and a model directory without metadata. The gunicorn master exits with status 1 before
any worker forks; Redis is not needed for that (the proxy works without it anyway)."""

from __future__ import annotations

from pathlib import Path

from tests.chapter4_serving_patterns.prediction_cache_pattern.harness import (
    PATTERN,
    Json,
    copy_items,
)
from tests.support.launcher import launch
from tests.support.polling import log_records
from tests.support.ports import wait_until


def refusal(env: dict[str, str], cache_redis_url: str) -> Json:
    """Start the proxy alone; it must exit with status 1. Its CRITICAL log record."""
    with launch(PATTERN, only=[], env={"REDIS_URL": cache_redis_url, **env}) as running:
        process = running.processes["proxy"]
        process.start()
        wait_until(lambda: not process.alive(), timeout_s=30, what="the proxy refuses")
        assert process.popen is not None and process.popen.returncode == 1, process.log_tail()
        critical = [r for r in log_records(process.log_text()) if r["level"] == "CRITICAL"]
        assert len(critical) == 1, process.log_tail()
        return critical[0]


def test_the_proxy_refuses_a_missing_data_dir(
    digits_dir: Path, tmp_path: Path, cache_redis_url: str
) -> None:
    missing = tmp_path / "items"
    record = refusal({"DATA_DIR": str(missing)}, cache_redis_url)
    assert "make models" in record["message"] and record["path"] == str(missing)


def test_the_proxy_refuses_a_data_dir_without_item_0000(
    digits_dir: Path, tmp_path: Path, cache_redis_url: str
) -> None:
    directory = copy_items(tmp_path / "items")
    (directory / "0000.png").unlink()
    record = refusal({"DATA_DIR": str(directory)}, cache_redis_url)
    assert "0000" in record["message"] and record["path"] == str(directory)


def test_the_proxy_refuses_an_item_0000_that_is_not_an_image(
    digits_dir: Path, tmp_path: Path, cache_redis_url: str
) -> None:
    directory = copy_items(tmp_path / "items")
    (directory / "0000.png").write_bytes(b"not an image")
    record = refusal({"DATA_DIR": str(directory)}, cache_redis_url)
    assert "not a usable image" in record["message"]


def test_the_proxy_refuses_a_model_directory_without_metadata(
    digits_dir: Path, tmp_path: Path, cache_redis_url: str
) -> None:
    record = refusal({"MODEL_DIR": str(tmp_path)}, cache_redis_url)
    assert "metadata.json" in record["message"] and record["path"] == str(tmp_path)
