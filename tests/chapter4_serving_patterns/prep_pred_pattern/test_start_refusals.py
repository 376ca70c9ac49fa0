"""Each process refuses, at start and with one CRITICAL log line naming the path, what it
cannot serve (SPEC 0.2 rule 2, SPEC 0.7): pred a model.onnx its metadata.json does not name;
prep a model directory that does not describe an image classifier, or no sample image. The
gunicorn master exits with status 1 before any worker forks."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.chapter4_serving_patterns.prep_pred_pattern.harness import (
    PATTERN,
    Json,
    tabular_model_directory,
)
from tests.support.launcher import launch
from tests.support.polling import log_records
from tests.support.ports import wait_until


def refusal(process_name: str, env: dict[str, str]) -> Json:
    """Start one process alone; it must exit with status 1. Its CRITICAL log record."""
    with launch(PATTERN, only=[], env=env) as running:
        process = running.processes[process_name]
        process.start()
        wait_until(lambda: not process.alive(), timeout_s=30, what=f"{process_name} refuses")
        assert process.popen is not None and process.popen.returncode == 1, process.log_tail()
        records = log_records(process.log_text())
        critical = [record for record in records if record["level"] == "CRITICAL"]
        assert len(critical) == 1, process.log_tail()
        return critical[0]


def test_pred_refuses_a_model_onnx_its_metadata_does_not_name(
    digits_dir: Path, tmp_path: Path
) -> None:
    model_dir = tmp_path / "digits_resnet"
    shutil.copytree(digits_dir, model_dir)
    with (model_dir / "model.onnx").open("ab") as model:
        model.write(b"\0")  # another file: another sha256 than metadata.json says
    record = refusal("pred", {"MODEL_DIR": str(model_dir)})
    assert "sha256" in record["message"] and record["path"] == str(model_dir)


def test_prep_refuses_a_model_that_is_not_an_image_classifier(tmp_path: Path) -> None:
    model_dir = tabular_model_directory(tmp_path / "tabular_test")
    record = refusal("prep", {"MODEL_DIR": str(model_dir)})
    assert "image_classification" in record["message"] and record["path"] == str(model_dir)


def test_prep_refuses_to_start_without_its_sample_image(digits_dir: Path, tmp_path: Path) -> None:
    missing = tmp_path / "sample.png"
    record = refusal("prep", {"SAMPLE_IMAGE_PATH": str(missing)})
    assert "make models" in record["message"] and record["path"] == str(missing)


def test_prep_refuses_a_sample_that_is_not_an_image(digits_dir: Path, tmp_path: Path) -> None:
    sample = tmp_path / "sample.png"
    sample.write_bytes(b"not an image")
    record = refusal("prep", {"SAMPLE_IMAGE_PATH": str(sample)})
    assert "not a usable image" in record["message"]
