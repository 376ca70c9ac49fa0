"""`make bench_raw` (run by `make bench` too): rows per second of onnxruntime alone on the rows
of the `predict100` benchmark, to set beside the same rows through HTTP.

One session as a worker holds it (src.ml.model: intra_op_num_threads=1), the 100 rows of
pattern.toml's `[[bench.wrk]] predict100` body as one float32 batch, `Model.predict` in a loop
for DURATION_S, best of REPEAT (the least disturbed run). The line goes between
`<!-- raw:start -->` and `<!-- raw:end -->` in the pattern README.

    make bench_raw      # = cd <pattern> && PYTHONPATH=. python scripts/bench_raw.py
"""

from __future__ import annotations

import time
import tomllib
from datetime import UTC, datetime

import numpy as np

from src.configurations import PATTERN_DIR, Settings
from src.ml.model import Features, Model

DURATION_S = 2.0
REPEAT = 3
ENDPOINT = "predict100"
START, END = "<!-- raw:start -->", "<!-- raw:end -->"


def rows_per_second(model: Model, features: Features) -> float:
    calls, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < DURATION_S:
        model.predict(features)
        calls += 1
    return calls * len(features) / elapsed


def main() -> None:
    pattern = tomllib.loads((PATTERN_DIR / "pattern.toml").read_text())
    body = next(item["body"] for item in pattern["bench"]["wrk"] if item["name"] == ENDPOINT)
    features = np.asarray(body["data"], dtype=np.float32)
    model = Model.load(Settings().model_dir)
    best = max(rows_per_second(model, features) for _ in range(REPEAT))
    line = (
        f"onnxruntime alone on the `{ENDPOINT}` rows ({len(features)} rows as one batch, one "
        f"thread): **{best:,.0f} rows/s** (`make bench_raw`, {datetime.now(UTC):%Y-%m-%d})."
    )
    print(line)
    readme = PATTERN_DIR / "README.md"
    text = readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{readme} has no {START} … {END} markers")
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    readme.write_text(f"{head}{START}\n{line}\n{END}{tail}")


if __name__ == "__main__":
    main()
