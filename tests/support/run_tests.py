"""`make test`: one pytest process per pattern directory under tests/, plus the repository tests.

Every pattern's package is called `src`, so two patterns cannot share a Python process. Each
pattern's tests run with the pattern directory as working directory and first on sys.path.
One Redis and one PostgreSQL serve the whole run. The last line is `N passed, N failed`.

    python tests/support/run_tests.py                     # everything
    python tests/support/run_tests.py tests/chapter2_training/model_db -- -k alias
    python tests/support/run_tests.py tests/test_artifacts.py   # one repository-level file
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from tests.support.services import (  # noqa: E402
    PostgresServer,
    RedisServer,
    ServiceUnavailable,
)

TESTS = REPO_ROOT / "tests"
RESULTS = REPO_ROOT / ".test-results"


@dataclass
class Suite:
    """One pytest process: a pattern's tests, or the repository-level tests."""

    tests: Path
    pattern_dir: Path | None
    files: tuple[Path, ...] = ()  # repository-level test files picked by name (default: all)

    @property
    def label(self) -> str:
        return self.tests.relative_to(REPO_ROOT).as_posix()


@dataclass
class Outcome:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    exit_code: int = 0


def discover(selected: list[str]) -> list[Suite]:
    suites = [Suite(TESTS, None)] if any(TESTS.glob("test_*.py")) else []
    for chapter in sorted(TESTS.glob("chapter*")):
        for tests in sorted(path for path in chapter.iterdir() if path.is_dir()):
            if any(tests.rglob("test_*.py")):
                suites.append(Suite(tests, REPO_ROOT / tests.relative_to(TESTS)))
    if not selected:
        return suites
    wanted = [(Path.cwd() / item).resolve() for item in selected]
    repository_files = tuple(path for path in wanted if path.parent == TESTS and path.is_file())
    chosen = [Suite(TESTS, None, repository_files)] if repository_files else []
    return chosen + [
        suite
        for suite in suites
        if any(suite.tests == path or suite.tests.is_relative_to(path) for path in wanted)
        and (suite.pattern_dir is not None or suite.tests in wanted)
    ]


def pytest_command(suite: Suite, junit: Path, extra: list[str]) -> list[str]:
    command = [
        sys.executable, "-m", "pytest",
        "-c", str(REPO_ROOT / "pyproject.toml"),
        "--rootdir", str(REPO_ROOT),
        f"--junitxml={junit}",
        "--durations=5", "--durations-min=1.0",
    ]  # fmt: skip
    if suite.pattern_dir is None:
        # repository-level tests only: the pattern directories are separate suites
        command += [str(path) for path in suite.files or sorted(TESTS.glob("test_*.py"))]
    else:
        command.append(str(suite.tests))
    return command + extra


def read_junit(junit: Path) -> Outcome:
    outcome = Outcome()
    if not junit.exists():
        return outcome
    root = ElementTree.parse(junit).getroot()
    for suite in root.iter("testsuite"):
        tests = int(suite.get("tests", 0))
        failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped = int(suite.get("skipped", 0))
        outcome.failed += failed
        outcome.skipped += skipped
        outcome.passed += tests - failed - skipped
    return outcome


def run_suite(suite: Suite, env: dict[str, str], extra: list[str]) -> Outcome:
    RESULTS.mkdir(exist_ok=True)
    junit = RESULTS / (suite.label.replace("/", "__") + ".xml")
    junit.unlink(missing_ok=True)
    if suite.pattern_dir is not None and not suite.pattern_dir.is_dir():
        print(f"\n=== {suite.label}: tests of a pattern directory that does not exist", flush=True)
        return Outcome(failed=1, exit_code=1)
    cwd = suite.pattern_dir or REPO_ROOT
    path_entries = [str(cwd), str(REPO_ROOT)] if suite.pattern_dir else [str(REPO_ROOT)]
    suite_env = {**env, "PYTHONPATH": os.pathsep.join(path_entries)}
    print(f"\n=== {suite.label} ===", flush=True)
    started = time.monotonic()
    command = pytest_command(suite, junit, extra)
    result = subprocess.run(command, cwd=cwd, env=suite_env, check=False)
    outcome = read_junit(junit)
    # 5 = no test collected (a filter matched nothing in this suite): not a failure
    outcome.exit_code = 0 if result.returncode == 5 else result.returncode
    if outcome.exit_code != 0 and outcome.failed == 0:
        outcome.failed = 1  # pytest itself failed (collection or usage error)
    print(
        f"=== {suite.label}: {outcome.passed} passed, {outcome.failed} failed, "
        f"{outcome.skipped} skipped in {time.monotonic() - started:.1f} s",
        flush=True,
    )
    return outcome


@contextlib.contextmanager
def shared_services(env: dict[str, str]) -> Iterator[None]:
    """One Redis and one PostgreSQL for every pytest process of the run."""
    with contextlib.ExitStack() as stack:
        for factory, variable in (
            (RedisServer, "TEST_REDIS_URL"),
            (PostgresServer, "TEST_POSTGRES_PORT"),
        ):
            try:
                server = factory()
            except ServiceUnavailable as missing:
                print(f"note: {missing}", flush=True)
                continue
            server.start()
            stack.callback(server.close)
            env[variable] = server.url if isinstance(server, RedisServer) else str(server.port)
        yield


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", help="test directories to run (default: all)")
    argv = sys.argv[1:]
    # everything after `--` goes to pytest untouched (argparse would take it for paths)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    suites = discover(args.paths)
    if not suites:
        print("no test suite matches", args.paths)
        return 2
    env = dict(os.environ)
    totals = Outcome()
    failures: list[str] = []
    with shared_services(env):
        for suite in suites:
            outcome = run_suite(suite, env, extra)
            totals.passed += outcome.passed
            totals.failed += outcome.failed
            totals.skipped += outcome.skipped
            if outcome.failed or outcome.exit_code:
                failures.append(suite.label)
    if failures:
        print("\nfailed suites: " + ", ".join(failures))
    print(f"\n{totals.passed} passed, {totals.failed} failed, {totals.skipped} skipped")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
