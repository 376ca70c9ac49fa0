"""The ResNet-style network of SPEC 1.2 behaviour 2: a 3x3 stem, three stages of BasicBlocks
with batch norm, global average pooling and a linear head. The softmax is added only for export
(`Classifier`), so training uses the numerically stable cross-entropy on logits."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Variant:
    widths: tuple[int, int, int]
    blocks: int  # BasicBlocks per stage


VARIANTS = {
    "standard": Variant((16, 32, 64), 1),
    "small": Variant((8, 16, 32), 1),
    "large": Variant((32, 64, 128), 2),
}


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and an identity (or 1x1 projection) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, variant: Variant, class_count: int) -> None:
        super().__init__()
        first = variant.widths[0]
        self.stem = nn.Sequential(
            nn.Conv2d(3, first, 3, 1, 1, bias=False), nn.BatchNorm2d(first), nn.ReLU()
        )
        layers: list[nn.Module] = []
        in_channels = first
        for stage, width in enumerate(variant.widths):
            for block in range(variant.blocks):
                stride = 2 if stage > 0 and block == 0 else 1
                layers.append(BasicBlock(in_channels, width, stride))
                in_channels = width
        self.stages = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(in_channels, class_count)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.pool(self.stages(self.stem(x)))
        logits: torch.Tensor = self.head(torch.flatten(features, 1))
        return logits


class Classifier(nn.Module):
    """The exported graph: logits → probabilities, so clients need no softmax (SPEC 0.2)."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.network(x), dim=1)


def build(variant: str, class_count: int) -> ResNet:
    return ResNet(VARIANTS[variant], class_count)


def parameter_count(network: nn.Module) -> int:
    return sum(parameter.numel() for parameter in network.parameters())
