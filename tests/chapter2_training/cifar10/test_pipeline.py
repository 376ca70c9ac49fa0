"""cifar10: SPEC 1.2 acceptance test 1 (fake mode end to end, in a temp dir), the steps run
alone, --cached-data, and the cifar10 mode's clear error offline.

Oracles: the files SPEC 1.2 names; the torch network in evaluation mode, rebuilt here from the
best checkpoint, for the exported graph; onnx / hashlib for the metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.chapter2_training.cifar10 import checks

FAKE_ARGS = ("--dataset", "fake", "--variant", "small", "--epochs", "2", "--seed", "42")
STEPS = ("preprocess", "train", "evaluate", "quantize")


def only_run(runs_dir: Path) -> Path:
    [run] = [path for path in runs_dir.iterdir() if path.is_dir()]
    return run


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One `python -m src.pipeline --dataset fake --quantize` into a temp dir."""
    tmp = tmp_path_factory.mktemp("fake")
    result = checks.run_cli(
        "src.pipeline",
        *FAKE_ARGS,
        "--quantize",
        *("--output-dir", str(tmp / "models"), "--runs-dir", str(tmp / "runs")),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return {"models": tmp / "models", "run": only_run(tmp / "runs")}


@pytest.fixture(scope="module")
def run_document(fake_run: dict[str, Path]) -> dict[str, Any]:
    document: dict[str, Any] = checks.read_json(fake_run["run"] / "run.json")
    return document


def test_preprocess_writes_the_book_layout(fake_run: dict[str, Path]) -> None:
    directory = fake_run["run"] / "preprocess"
    classes = checks.read_json(directory / "classes.json")
    assert sorted(classes, key=int) == [str(index) for index in range(10)]
    for part in ("train", "test"):
        meta = checks.read_json(directory / f"meta_{part}.json")
        files = sorted(
            str(path.relative_to(directory / part)) for path in (directory / part).glob("*/*.png")
        )
        assert sorted(meta) == files and files
        assert all(meta[name] == int(name.split("/")[0]) for name in files)
    assert set(checks.read_json(directory / "normalisation.json")) == {"mean", "std"}


def test_every_artifact_is_written(fake_run: dict[str, Path], run_document: dict[str, Any]) -> None:
    run = fake_run["run"]
    assert run_document["run_id"] == run.name
    assert list(run_document["steps"]) == list(STEPS)
    for name, step in run_document["steps"].items():
        assert {"parameters", "inputs", "outputs", "duration_s"} <= set(step), name
        assert step["duration_s"] >= 0
    assert sorted(path.name for path in (run / "train" / "checkpoints").iterdir()) == [
        "epoch_001.pt",
        "epoch_002.pt",
    ]
    for figures in (run / "evaluate" / "metrics.json", run / "quantize" / "metrics.json"):
        metrics = checks.read_json(figures)
        assert metrics["total_tested"] == 20
        assert 0.0 <= metrics["accuracy"] <= 1.0
    assert sorted(path.name for path in fake_run["models"].iterdir()) == [
        "fake_resnet_small",
        "fake_resnet_small_int8",
    ]


@pytest.mark.parametrize("name", ["fake_resnet_small", "fake_resnet_small_int8"])
def test_metadata_is_complete_and_consistent(
    fake_run: dict[str, Path], run_document: dict[str, Any], name: str
) -> None:
    metadata = checks.assert_model_directory(fake_run["models"] / name)
    assert metadata["training"]["run_id"] == run_document["run_id"]
    step = "evaluate" if name == "fake_resnet_small" else "quantize"
    figures = checks.read_json(fake_run["run"] / step / "metrics.json")
    assert metadata["metrics"] == figures
    # the published directory is byte-identical to the one the run staged
    staged = fake_run["run"] / ("train" if step == "evaluate" else step) / name
    for artifact in checks.ARTIFACTS:
        assert checks.sha256(staged / artifact) == checks.sha256(
            fake_run["models"] / name / artifact
        )


def test_normalisation_is_the_training_images_statistics(
    fake_run: dict[str, Path], run_document: dict[str, Any]
) -> None:
    """Acceptance test 6: metadata == run.json's training transform == the pixels' own mean/std."""
    from PIL import Image

    used = run_document["steps"]["train"]["outputs"]["normalisation"]
    metadata = checks.read_json(fake_run["models"] / "fake_resnet_small" / "metadata.json")
    assert [metadata["preprocessing"][key] for key in ("mean", "std")] == [
        used["mean"],
        used["std"],
    ]
    pixels = np.stack(
        [
            np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255
            for path in (fake_run["run"] / "preprocess" / "train").glob("*/*.png")
        ]
    ).reshape(-1, 3)
    np.testing.assert_allclose(used["mean"], pixels.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(used["std"], pixels.std(axis=0), atol=1e-6)


def test_onnx_equals_the_torch_model_in_evaluation_mode(
    fake_run: dict[str, Path], run_document: dict[str, Any]
) -> None:
    from src.ml import network

    trained = run_document["steps"]["train"]["outputs"]
    model = network.build("small", 10)
    model.load_state_dict(torch.load(trained["checkpoint"]))
    model.eval()
    batch = torch.from_numpy(
        np.random.default_rng(0).normal(size=(8, 3, 32, 32)).astype(np.float32)
    )
    with torch.no_grad():
        expected = torch.softmax(model(batch), dim=1).numpy()
    model_dir = fake_run["models"] / "fake_resnet_small"
    actual = checks.session(model_dir).run(["probabilities"], {"input": batch.numpy()})[0]
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-4)
    np.testing.assert_allclose(actual.sum(axis=1), 1.0, atol=1e-5)  # softmax in the graph
    one = checks.session(model_dir).run(["probabilities"], {"input": batch.numpy()[:1]})[0]
    np.testing.assert_allclose(one, actual[:1], atol=1e-6)  # dynamic batch axis


def test_each_step_runs_alone_to_the_same_bytes_and_cached_data_is_reused(
    fake_run: dict[str, Path], tmp_path: Path
) -> None:
    """The steps run one by one in another run give the pipeline's model bytes: same seed,
    same data → same sha256 (SPEC 1.2 behaviour 2, deterministic training and export)."""
    runs, models = tmp_path / "runs", tmp_path / "models"
    common = ("--runs-dir", str(runs), "--run-id", "alone")
    steps = [
        ("src.preprocess", "--dataset", "fake", "--seed", "42", *common),
        ("src.train", "--variant", "small", "--epochs", "2", "--seed", "42", *common),
        ("src.evaluate", "--output-dir", str(models), *common),
        (
            "src.quantize",
            "--model-dir",
            str(models / "fake_resnet_small"),
            "--output-dir",
            str(models),
            *common,
        ),
    ]
    for module, *args in steps:
        result = checks.run_cli(module, *args)
        assert result.returncode == 0, f"{module}: {result.stdout}{result.stderr}"
    document = checks.read_json(runs / "alone" / "run.json")
    assert list(document["steps"]) == list(STEPS)
    for name in ("fake_resnet_small", "fake_resnet_small_int8"):
        assert checks.sha256(models / name / "model.onnx") == checks.sha256(
            fake_run["models"] / name / "model.onnx"
        )

    cached = checks.run_cli(
        "src.pipeline",
        *FAKE_ARGS,
        *("--cached-data", "alone", "--runs-dir", str(runs), "--run-id", "reused"),
        *("--output-dir", str(tmp_path / "again")),
    )
    assert cached.returncode == 0, cached.stderr
    preprocess = checks.read_json(runs / "reused" / "run.json")["steps"]["preprocess"]
    assert preprocess["parameters"]["cached_data"] == "alone"
    assert preprocess["outputs"]["directory"] == str(runs / "alone" / "preprocess")
    assert not (runs / "reused" / "preprocess").exists()


def test_cached_data_of_another_data_set_is_refused(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    made = checks.run_cli(
        "src.preprocess", "--dataset", "fake", "--runs-dir", str(runs), "--run-id", "f"
    )
    assert made.returncode == 0, made.stderr
    result = checks.run_cli(
        "src.pipeline",
        "--dataset",
        "digits",
        "--cached-data",
        "f",
        "--runs-dir",
        str(runs),
        "--output-dir",
        str(tmp_path / "models"),
    )
    assert result.returncode != 0
    assert result.stderr.startswith("error: --cached-data f holds")
    assert not (tmp_path / "models").exists()


@pytest.mark.parametrize("module", ["src.pipeline", "src.preprocess"])
def test_cifar10_without_files_offline_stops_with_one_clear_line(
    module: str, tmp_path: Path
) -> None:
    output = ("--output-dir", str(tmp_path / "models")) if module == "src.pipeline" else ()
    result = checks.run_cli(
        module,
        *("--dataset", "cifar10", "--data-dir", str(tmp_path / "none")),
        *("--runs-dir", str(tmp_path / "runs"), *output),
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "CIFAR-10" in lines[0] and "--download" in lines[0]
    assert not (tmp_path / "runs").exists()
