"""The training transform: one `Preprocessing` (image_input) feeds the training tensors, the
evaluation and the exported metadata (SPEC 1.2 behaviour 5), then light augmentation on tensors.

The preprocessed images are read back through image_input's decode → RGB → resize → normalise,
exactly as a serving process reads an upload, so training and serving cannot differ.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image

from src.image_input import Preprocessing, Resize, image_tensor, open_image
from src.ml.data import IMAGE_SIZE

MAX_SHIFT_PX = 2  # SPEC 1.2 behaviour 2
MAX_ROTATION_DEG = 10.0


@dataclass(frozen=True)
class LabelledTensors:
    images: torch.Tensor  # float32 [N, 3, H, W], normalised
    labels: torch.Tensor  # int64 [N]
    paths: list[Path]


BACKGROUNDS = {"paper": (255, 255, 255), "blackboard": (0, 0, 0)}


def preprocessing(mean: list[float], std: list[float], domain: str = "paper") -> Preprocessing:
    """The serving definition of the model's input: direct bilinear resize to 32x32, pixels
    scaled to [0, 1], normalised with the training images' per-channel mean and std. A
    transparent upload is composited onto the domain's background (white paper, black board),
    which is what the model saw around every digit."""
    return Preprocessing(
        resize=Resize(mode="direct", size=(IMAGE_SIZE, IMAGE_SIZE), interpolation="bilinear"),
        mean=(mean[0], mean[1], mean[2]),
        std=(std[0], std[1], std[2]),
        background=BACKGROUNDS[domain],
    )


def channel_statistics(images: list[Image.Image], scale: float) -> dict[str, list[float]]:
    """Per-channel mean and standard deviation of the pixels scaled to [0, 1] (float64 sums,
    rounded to 6 digits so that metadata, run.json and the tensors hold the same numbers)."""
    pixels = np.stack([np.asarray(image, dtype=np.float64) for image in images]) * scale
    flat = pixels.reshape(-1, 3)
    std = np.maximum(flat.std(axis=0), 1e-6)  # a blank channel must not divide by zero
    return {
        "mean": [round(float(value), 6) for value in flat.mean(axis=0)],
        "std": [round(float(value), 6) for value in std],
    }


def image_files(split_dir: Path) -> list[tuple[Path, int]]:
    """`<split>/<label>/<id>.png` in a stable order: by label, then by id."""
    return [
        (path, int(label_dir.name))
        for label_dir in sorted(split_dir.iterdir(), key=lambda entry: int(entry.name))
        for path in sorted(label_dir.glob("*.png"))
    ]


def load_tensors(split_dir: Path, prep: Preprocessing) -> LabelledTensors:
    files = image_files(split_dir)
    arrays: list[NDArray[np.float32]] = [
        image_tensor(open_image(path.read_bytes(), background=prep.background), prep)
        for path, _ in files
    ]
    return LabelledTensors(
        torch.from_numpy(np.stack(arrays)),
        torch.tensor([label for _, label in files], dtype=torch.int64),
        [path for path, _ in files],
    )


def augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random shifts of up to ±2 px and rotations of up to ±10° (one affine warp per image),
    so that digits drawn a little off-centre or tilted, or rendered at other sizes, still
    classify. Edge pixels extend outwards (`border`): the background stays background."""
    count, _, height, width = batch.shape
    angles = (torch.rand(count, generator=generator) * 2 - 1) * math.radians(MAX_ROTATION_DEG)
    shifts = torch.randint(-MAX_SHIFT_PX, MAX_SHIFT_PX + 1, (count, 2), generator=generator)
    cos, sin = torch.cos(angles), torch.sin(angles)
    theta = torch.zeros(count, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin
    theta[:, 1, 0], theta[:, 1, 1] = sin, cos
    # affine_grid works in [-1, 1] coordinates: a shift of one pixel is 2 / size.
    theta[:, 0, 2] = shifts[:, 0].float() * 2 / width
    theta[:, 1, 2] = shifts[:, 1].float() * 2 / height
    grid = torch.nn.functional.affine_grid(theta, list(batch.shape), align_corners=False)
    return torch.nn.functional.grid_sample(
        batch, grid, mode="bilinear", padding_mode="border", align_corners=False
    )


def read_json(path: Path) -> dict[str, list[float]]:
    document: dict[str, list[float]] = json.loads(path.read_text())
    return document
