"""cifar10: the sample writer (SPEC 1.2 behaviour 11, SPEC 0.10 rule 1): held-out digits only,
named 0000, 0001, ..., with their true labels, at the size and in the format asked for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.chapter2_training.cifar10 import checks


@pytest.mark.parametrize(
    ("domain", "image_format", "suffix"),
    [("paper", "png", ".png"), ("blackboard", "jpeg", ".jpg")],
)
def test_samples_are_the_held_out_digits_with_their_labels(
    tmp_path: Path, domain: str, image_format: str, suffix: str
) -> None:
    out = tmp_path / "data"
    result = checks.run_cli(
        "src.samples",
        *("--domain", domain, "--count", "25", "--size", "64"),
        *("--format", image_format, "--out", str(out)),
    )
    assert result.returncode == 0, result.stderr
    expected = checks.held_out_digits(domain, 64)[:25]
    labels = checks.read_json(out / "labels.json")
    assert list(labels) == [f"{index:04d}" for index in range(25)]
    assert labels == {f"{index:04d}": str(label) for index, (_, label) in enumerate(expected)}
    assert sorted(path.name for path in out.iterdir()) == sorted(
        [*(f"{item}{suffix}" for item in labels), "labels.json", "sample.png"]
    )
    for index, (image, _) in enumerate(expected):
        with Image.open(out / f"{index:04d}{suffix}") as written:
            assert written.format == image_format.upper() and written.size == (64, 64)
            pixels = np.asarray(written.convert("RGB"), dtype=np.int16)
        difference = np.abs(pixels - np.asarray(image, dtype=np.int16))
        assert difference.max() == 0 if image_format == "png" else difference.mean() < 4
    with Image.open(out / "sample.png") as sample:
        assert sample.format == "PNG"
        assert np.array_equal(np.asarray(sample.convert("RGB")), np.asarray(expected[0][0]))


def test_more_samples_than_the_held_out_split_is_refused(tmp_path: Path) -> None:
    result = checks.run_cli("src.samples", "--count", "451", "--out", str(tmp_path / "data"))
    assert result.returncode != 0
    assert result.stderr.startswith("error: --count 451")
