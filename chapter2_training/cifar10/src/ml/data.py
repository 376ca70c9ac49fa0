"""The data sets of the pipeline as labelled RGB images (SPEC 1.2 "Data modes").

`digits` renders scikit-learn's bundled 8x8 handwritten digits (offline; the default), `cifar10`
reads torchvision's CIFAR-10 files from a directory, `fake` generates a few dozen coloured
patterns for fast pipeline tests. The preprocess step and the sample writer render digits with
the same function, so the held-out images the patterns test with are the images evaluate scores.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

DATASETS = ("digits", "cifar10", "fake")
DOMAINS = ("paper", "blackboard")
IMAGE_SIZE = 32  # what preprocess stores and the network reads
DIGITS_TEST_FRACTION = 0.25  # the same split for every variant and domain (SPEC 1.2)
DIGITS_MAX_INTENSITY = 16.0
CIFAR10_CLASSES = ("plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_FOLDER = "cifar-10-batches-py"  # what torchvision's CIFAR10 class reads under its root
FAKE_PER_CLASS = {"train": 6, "test": 2}
DESCRIPTIONS = {
    "digits": "scikit-learn digits (1797 8x8 handwritten digits, UCI), rendered to 32x32 RGB",
    "cifar10": "CIFAR-10 (60000 32x32 colour images, 10 classes), torchvision's files",
    "fake": "generated 32x32 colour patterns, 10 classes (pipeline tests only)",
}


class DatasetUnavailable(Exception):
    """The data set's files are not there and may not be downloaded; the message is one line."""


@dataclass(frozen=True)
class Item:
    item_id: str
    label: int
    image: Image.Image  # RGB


@dataclass(frozen=True)
class Dataset:
    name: str
    classes: tuple[str, ...]
    train: list[Item]
    test: list[Item]


@dataclass(frozen=True)
class DigitsSplit:
    x_train: NDArray[np.float64]  # intensities 0..16, [n, 8, 8]
    x_test: NDArray[np.float64]
    y_train: NDArray[np.int64]
    y_test: NDArray[np.int64]


def digits_split(seed: int) -> DigitsSplit:
    bunch = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        np.asarray(bunch.images, dtype=np.float64),
        np.asarray(bunch.target, dtype=np.int64),
        test_size=DIGITS_TEST_FRACTION,
        random_state=seed,
        stratify=bunch.target,
    )
    return DigitsSplit(x_train, x_test, y_train, y_test)


def render_digit(intensities: NDArray[np.float64], domain: str, size: int) -> Image.Image:
    """8x8 intensities v ∈ [0, 16] → an RGB image of sizexsize: dark ink on white paper
    (255·(1-v/16)) or light chalk on a black board (255·v/16), upscaled bilinearly."""
    ink = intensities / DIGITS_MAX_INTENSITY
    gray = 255.0 * (1.0 - ink) if domain == "paper" else 255.0 * ink
    pixels = np.clip(np.rint(gray), 0, 255).astype(np.uint8)
    small = Image.fromarray(pixels)  # mode "L"
    return small.resize((size, size), Image.Resampling.BILINEAR).convert("RGB")


def digits_items(
    rows: NDArray[np.float64], labels: NDArray[np.int64], domain: str, size: int
) -> list[Item]:
    return [
        Item(f"{index:04d}", int(label), render_digit(row, domain, size))
        for index, (row, label) in enumerate(zip(rows, labels, strict=True))
    ]


def digits(domain: str, seed: int) -> Dataset:
    split = digits_split(seed)
    return Dataset(
        "digits",
        tuple(str(digit) for digit in range(10)),
        digits_items(split.x_train, split.y_train, domain, IMAGE_SIZE),
        digits_items(split.x_test, split.y_test, domain, IMAGE_SIZE),
    )


def fake(seed: int) -> Dataset:
    """Each class is a coloured square at a class-specific place on a noisy background: easy
    enough that a few epochs learn it, so the pipeline test checks plumbing, not patience."""
    generator = np.random.default_rng(seed)

    def items(part: str) -> list[Item]:
        made = []
        for label in range(10):
            for copy in range(FAKE_PER_CLASS[part]):
                pixels = generator.integers(0, 64, (IMAGE_SIZE, IMAGE_SIZE, 3))
                colour = np.array([(label * 97) % 256, (label * 53 + 80) % 256, 255 - label * 20])
                top, left = 2 + (label // 5) * 14, 2 + (label % 5) * 5
                pixels[top : top + 14, left : left + 8] = colour
                image = Image.fromarray(pixels.astype(np.uint8), "RGB")
                made.append(Item(f"{label}{copy:03d}", label, image))
        return made

    return Dataset(
        "fake", tuple(f"class_{label}" for label in range(10)), items("train"), items("test")
    )


def check_available(name: str, data_dir: Path, download: bool) -> None:
    """Fail before a run is created when the files of a data set are missing (cifar10)."""
    if name == "cifar10" and not download and not (data_dir / CIFAR10_FOLDER).is_dir():
        raise DatasetUnavailable(
            f"CIFAR-10 files not found in {data_dir / CIFAR10_FOLDER}: extract the python "
            "version of the data set there, or pass --download (needs internet)"
        )


def cifar10(data_dir: Path, download: bool) -> Dataset:
    # torchvision only here: digits and fake modes, and every serving pattern, never import it.
    from torchvision.datasets import CIFAR10  # type: ignore[import-untyped]

    check_available("cifar10", data_dir, download)
    try:
        parts = {
            part: CIFAR10(str(data_dir), train=part == "train", download=download)
            for part in ("train", "test")
        }
    except (RuntimeError, OSError) as error:  # corrupt files, or no network for --download
        raise DatasetUnavailable(f"CIFAR-10 in {data_dir}: {error}") from error

    def items(part: str) -> list[Item]:
        source = parts[part]
        return [
            Item(f"{index:05d}", int(label), Image.fromarray(pixels, "RGB"))
            for index, (pixels, label) in enumerate(zip(source.data, source.targets, strict=True))
        ]

    return Dataset("cifar10", CIFAR10_CLASSES, items("train"), items("test"))


def load(name: str, domain: str, seed: int, data_dir: Path, download: bool) -> Dataset:
    if name == "digits":
        return digits(domain, seed)
    if name == "fake":
        return fake(seed)
    return cifar10(data_dir, download)


def held_out_digits(domain: str, seed: int, size: int) -> Iterator[Item]:
    """The test split of digits rendered at `size` (what the sample writer saves)."""
    split = digits_split(seed)
    yield from digits_items(split.x_test, split.y_test, domain, size)
