"""cifar10: SPEC 1.2 acceptance test 2, mode discipline. One short epoch on random tensors
(in memory, nothing written): batch norm learns its running statistics while training, and
evaluation mode is deterministic afterwards."""

from __future__ import annotations

import torch

from src import train
from src.ml import network
from src.ml.transform import LabelledTensors, augment


def random_data(count: int = 48) -> LabelledTensors:
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(count, 3, 32, 32, generator=generator)
    labels = torch.randint(0, 10, (count,), generator=generator)
    return LabelledTensors(images, labels, [])


def batch_norm_statistics(model: torch.nn.Module) -> list[torch.Tensor]:
    return [
        buffer.clone()
        for module in model.modules()
        if isinstance(module, torch.nn.BatchNorm2d)
        for buffer in (module.running_mean, module.running_var)
        if buffer is not None
    ]


def training_mode(model: torch.nn.Module) -> bool:
    return model.training


def test_batch_norm_statistics_change_in_training_and_evaluation_is_repeatable() -> None:
    generator = train.make_deterministic(42, 2)
    model = network.build("small", 10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    before = batch_norm_statistics(model)
    loss, steps = train.train_one_epoch(
        model,
        random_data(),
        optimizer=optimizer,
        scheduler=scheduler,
        batch_size=16,
        generator=generator,
    )
    assert steps == 3 and loss > 0
    assert training_mode(model)  # optimisation steps ran in training mode
    after = batch_norm_statistics(model)
    assert all(not torch.equal(old, new) for old, new in zip(before, after, strict=True))

    batch = random_data(8).images
    first = train.predict_logits(model, batch)
    assert not training_mode(model)
    second = train.predict_logits(model, batch)
    assert torch.equal(first, second)
    unchanged = zip(after, batch_norm_statistics(model), strict=True)
    assert all(torch.equal(old, new) for old, new in unchanged)  # evaluation learns nothing


def test_augmentation_shifts_and_rotates_within_bounds() -> None:
    """A lone bright pixel moves by at most 2 px plus the rotation of ±10° about the centre."""
    image = torch.zeros(1, 3, 32, 32)
    image[0, :, 16, 16] = 1.0  # at the centre, so a rotation barely moves it
    moved = augment(image.repeat(64, 1, 1, 1), torch.Generator().manual_seed(1))
    brightest = moved[:, 0].flatten(1).argmax(dim=1)
    rows, columns = brightest // 32, brightest % 32
    assert int((rows - 16).abs().max()) <= 3 and int((columns - 16).abs().max()) <= 3
    assert len(set(zip(rows.tolist(), columns.tolist(), strict=True))) > 1  # not the identity
