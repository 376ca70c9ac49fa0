"""The CLI client (SPEC 3.2 acceptance 4): it prints the true label of data/sample.png first,
with both protocols, as `label (p.pp), ...`; it exits non-zero with a one-line message and no
traceback when the server refuses the input or is not there."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.chapter4_serving_patterns.synchronous_pattern.harness import (
    DATA_DIR,
    PATTERN_DIR,
    Pred,
    running_pred,
)
from tests.support.image_checks import ImageOracle, sample_label

TOP_3 = re.compile(r"^(\S+) \((\d\.\d\d)\), (\S+) \((\d\.\d\d)\), (\S+) \((\d\.\d\d)\)$")


@pytest.fixture(scope="module")
def pred(oracle: ImageOracle) -> Iterator[Pred]:
    """A server of its own: the last test stops it."""
    with running_pred() as running:
        yield running


def client(url: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "src.client", "--url", url, *arguments],
        cwd=PATTERN_DIR,
        env={"PYTHONPATH": str(PATTERN_DIR), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("protocol", ["rest", "v2"])
def test_the_client_prints_the_true_label_first(
    pred: Pred, oracle: ImageOracle, protocol: str
) -> None:
    sample = DATA_DIR / "sample.png"
    done = client(pred.url, "--image-file", str(sample), "--protocol", protocol)
    assert done.returncode == 0, done.stderr
    match = TOP_3.match(done.stdout.strip())
    assert match, done.stdout
    assert match.group(1) == sample_label(DATA_DIR)
    expected = oracle.probabilities([sample.read_bytes()])[0]
    assert float(match.group(2)) == pytest.approx(float(expected.max()), abs=0.005)


@pytest.mark.parametrize("job", ["client_rest", "client_v2"])
def test_the_demo_jobs_run_the_client_on_the_sample(pred: Pred, job: str) -> None:
    """Procfile.jobs, as `make request` runs them against the launch's PRED_URL."""
    output = pred.running.run_job(job)
    assert TOP_3.match(output.strip()), output
    assert output.split(" ", 1)[0] == sample_label(DATA_DIR)


@pytest.mark.parametrize(("protocol", "key"), [("rest", "preprocessing"), ("v2", "inputs")])
def test_the_client_prints_the_metadata(pred: Pred, protocol: str, key: str) -> None:
    done = client(pred.url, "--metadata", "--protocol", protocol)
    assert done.returncode == 0, done.stderr
    assert key in json.loads(done.stdout)


@pytest.mark.parametrize("protocol", ["rest", "v2"])
def test_a_refused_image_is_one_line_and_status_1(pred: Pred, protocol: str) -> None:
    done = client(pred.url, "--image-file", str(DATA_DIR / "labels.json"), "--protocol", protocol)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert "415 unsupported_media_type" in done.stderr


def test_a_missing_file_is_one_line_and_status_2(pred: Pred) -> None:
    done = client(pred.url, "--image-file", str(DATA_DIR / "no-such.png"))
    assert done.returncode == 2
    assert done.stderr.startswith("error: cannot read") and done.stderr.count("\n") == 1


@pytest.mark.parametrize("protocol", ["rest", "v2"])
def test_a_stopped_server_is_one_line_and_status_2(pred: Pred, protocol: str) -> None:
    pred.running.processes["pred"].stop()
    done = client(pred.url, "--image-file", str(DATA_DIR / "sample.png"), "--protocol", protocol)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(f"error: cannot reach {pred.url}"), done.stderr
    assert done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr
