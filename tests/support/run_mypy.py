"""`make lint`'s type check: mypy once per pattern (each has its own `src`) and once for the
repository's own code (tests/support and the repository-level tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from tests.support.pattern import pattern_directories  # noqa: E402

CONFIG = str(REPO_ROOT / "pyproject.toml")


def mypy(targets: list[str], cwd: Path, mypy_path: list[Path]) -> bool:
    env = {**os.environ, "MYPYPATH": os.pathsep.join(str(path) for path in mypy_path)}
    command = [sys.executable, "-m", "mypy", "--config-file", CONFIG, *targets]
    print(f"$ (cd {cwd.relative_to(REPO_ROOT) or '.'}) mypy {' '.join(targets)}", flush=True)
    return subprocess.run(command, cwd=cwd, env=env, check=False).returncode == 0


def main() -> int:
    repository_tests = sorted(path.relative_to(REPO_ROOT).as_posix()
                              for path in (REPO_ROOT / "tests").glob("test_*.py"))  # fmt: skip
    ok = mypy(["tests/support", "tests/conftest.py", *repository_tests], REPO_ROOT, [])
    for directory in pattern_directories():
        # the served code (or a generator's builder), and the pattern's own tooling
        targets = [extra for extra in ("src", "builder", "locustfile.py", "scripts")
                   if (directory / extra).exists()]  # fmt: skip
        if not {"src", "builder"} & set(targets):
            continue
        tests = REPO_ROOT / "tests" / directory.relative_to(REPO_ROOT)
        if tests.is_dir():
            targets.append(str(tests))
        ok = mypy(targets, directory, [REPO_ROOT]) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
