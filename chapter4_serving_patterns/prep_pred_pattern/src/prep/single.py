"""The benchmark's baseline, not part of the pattern: prep with the graph in its own process.

    gunicorn --config src/prep/gunicorn.conf.py 'src.prep.single:create_app()'

The same app, routes, preprocessing and postprocessing as prep; only the predict stage differs:
onnxruntime on MODEL_DIR (the whole directory, sha256 verified) in a worker thread, instead of
a V2 call to pred. `make overhead` (scripts/overhead.py) runs both and reports what the split
costs in latency. No Procfile line, image or manifest runs it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
import numpy as np
from fastapi import FastAPI
from numpy.typing import NDArray

from src.configurations import PrepSettings
from src.ml.model import Model
from src.ml.pipeline import ImageClassifier, Probabilities
from src.prep import app


class LocalPredictor:
    def __init__(self, model: Model, classifier: ImageClassifier) -> None:
        self.model = model
        self.input = classifier.input.name
        self.output = classifier.output.name

    async def predict(self, batch: NDArray[np.float32]) -> Probabilities:
        results = await anyio.to_thread.run_sync(self.model.run, {self.input: batch}, [self.output])
        probabilities: Probabilities = results[self.output]
        return probabilities

    async def readiness(self) -> dict[str, Any]:
        card = self.model.card
        return {"url": "in-process", "model": card.name, "version": card.version}


@asynccontextmanager
async def local_predictor(
    settings: PrepSettings, classifier: ImageClassifier
) -> AsyncIterator[LocalPredictor]:
    yield LocalPredictor(Model.load(settings.model_dir), classifier)


def create_app(settings: PrepSettings | None = None) -> FastAPI:
    return app.create_app(settings, open_predictor=local_predictor)
