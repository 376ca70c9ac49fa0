"""`runs/<run_id>/`: one directory per pipeline run, with `run.json` recording every step's
parameters, inputs, outputs and duration (SPEC 1.2 behaviour 9). Steps run alone find the
outputs of the earlier steps through it."""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RUN_FILE = "run.json"

Json = dict[str, Any]


class RunError(Exception):
    """A run or an earlier step's output is missing; the message is one line."""


def new_run_id(label: str) -> str:
    """Sortable by time, readable (what it trains), unique (two runs in one second)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{label}-{secrets.token_hex(2)}"


@dataclass(frozen=True)
class Run:
    runs_dir: Path
    run_id: str

    @property
    def directory(self) -> Path:
        return self.runs_dir / self.run_id

    def step_dir(self, step: str) -> Path:
        return self.directory / step

    def read(self) -> Json:
        path = self.directory / RUN_FILE
        if not path.is_file():
            raise RunError(f"no run {self.run_id} in {self.runs_dir} ({path} is missing)")
        document: Json = json.loads(path.read_text())
        return document

    def write(self, document: Json) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary = self.directory / f".{RUN_FILE}.tmp"
        temporary.write_text(json.dumps(document, indent=2) + "\n")
        os.replace(temporary, self.directory / RUN_FILE)

    def start(self, command: str, model_name: str) -> None:
        """Create run.json unless it exists (a step run alone may be the first of a run)."""
        if (self.directory / RUN_FILE).is_file():
            return
        self.write(
            {
                "run_id": self.run_id,
                "model_name": model_name,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "command": command,
                "steps": {},
            }
        )

    def step(self, name: str) -> Json:
        steps: Json = self.read()["steps"]
        if name not in steps:
            raise RunError(f"run {self.run_id} has no {name} step yet: run `src.{name}` first")
        step: Json = steps[name]
        return step

    @contextmanager
    def record(self, name: str, parameters: Json, inputs: Json) -> Iterator[Json]:
        """Yields the step's `outputs` for the step to fill; on success the step, with its
        duration, is written into run.json (a failed step leaves no record)."""
        outputs: Json = {}
        started = time.perf_counter()
        yield outputs
        document = self.read()
        document["steps"][name] = {
            "parameters": parameters,
            "inputs": inputs,
            "outputs": outputs,
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "duration_s": round(time.perf_counter() - started, 3),
        }
        self.write(document)
