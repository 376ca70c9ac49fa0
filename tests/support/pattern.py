"""What a pattern directory declares: pattern.toml, Procfile and Procfile.jobs (CONVENTIONS 2).

pattern.toml, every key optional except `name`:

    [pattern]
    name = "model_db"            # also the image name prefix: ml-system-in-actions/<name>-...
    version = "0.1.0"            # image tag
    summary = "one line for the README map and the demo"
    services = ["postgres"]      # system services the pattern cannot run without
    entry = "model_db"           # the process clients call
    jobs = ["migrate"]           # Procfile.jobs lines run in this order before the processes
    ready_timeout_s = 60
    component = "api"            # image component of a plain `Dockerfile`
    demo_script = "scripts/request.py"
                                 # optional, for a pattern with no process (a generator): the
                                 # script `make demo` runs in the pattern directory as its tour
    tag_suffix_from = "models/iris_svc/metadata.json"
                                 # optional: a model baked into the images; their tag becomes
                                 # `<version>-<that file's "version">` (missing file: an error)

    [processes.model_db]
    ready = "/ready"             # HTTP path polled until it answers 200, or "port"
    port = 8100                  # default port (equal to the settings default; checked)
    k8s = "CronJob/batch-job"    # optional: the rendered object that stands in for this
                                 # process in k8s instead of its Deployment (a loop that k8s
                                 # schedules as a CronJob); checked to exist

    [[demo]]                     # sample requests of `make request` and `make demo`
    title = "what this step shows"
    method = "GET"
    path = "/health"
    body = {}                    # JSON body (optional)
    process = "model_db"         # which process to call (default: entry)
    expect = 503                 # the status this step must show (default: anything below 500)
    headers = ["X-Cache"]        # response headers to print with the body (optional)

    [demo_env]                   # environment of `make demo`'s launch; `{tmp}` becomes a fresh
    MODEL_DIR = "{tmp}/model"    # temporary directory, so every tour starts from empty state

    [[demo]]                     # a step may run a Procfile.jobs line instead of a request
    title = "predict every pending row once"
    job = "job_once"

Every process listens on `<NAME>_PORT` and is found by the others through `<NAME>_URL`
(SPEC 0.7); the launcher sets both, so pattern.toml does not repeat them.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
ENV_PAIR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
K8S_OBJECT = re.compile(r"^[A-Z][A-Za-z]+/[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")  # Kind/name
KNOWN_SERVICES = ("redis", "postgres")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")  # what docker accepts as a tag


class ImageTagError(ValueError):
    """The image tag cannot be made: the model version it carries is not there."""


@dataclass(frozen=True)
class Command:
    """One Procfile line: `name: VAR=value ... command args`."""

    name: str
    env: dict[str, str]
    argv: list[str]

    @property
    def env_prefix(self) -> str:
        return self.name.upper()

    @property
    def port_variable(self) -> str:
        return f"{self.env_prefix}_PORT"

    @property
    def url_variable(self) -> str:
        return f"{self.env_prefix}_URL"

    @property
    def k8s_name(self) -> str:
        return self.name.replace("_", "-")


def parse_procfile(path: Path) -> dict[str, Command]:
    commands: dict[str, Command] = {}
    if not path.exists():
        return commands
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, separator, rest = line.partition(":")
        if not separator:
            raise ValueError(f"{path}: not a Procfile line: {raw!r}")
        tokens = shlex.split(rest)
        env: dict[str, str] = {}
        while tokens and ENV_PAIR.match(tokens[0]):
            key, _, value = tokens.pop(0).partition("=")
            env[key] = value
        if not tokens:
            raise ValueError(f"{path}: {name} has no command")
        commands[name.strip()] = Command(name.strip(), env, tokens)
    return commands


@dataclass(frozen=True)
class DemoRequest:
    method: str = "GET"
    path: str = ""
    body: Any = None
    job: str | None = None
    expect: int | None = None
    process: str | None = None
    title: str = ""
    headers: tuple[str, ...] = ()


def unexpected(step: DemoRequest, status: int) -> bool:
    """A demo step went wrong: not the status it expects, or a 5xx when it expects none."""
    return status != step.expect if step.expect is not None else status >= 500


@dataclass(frozen=True)
class Pattern:
    directory: Path
    name: str
    version: str
    summary: str
    services: tuple[str, ...]
    entry: str | None
    jobs: tuple[str, ...]
    ready: dict[str, str]
    ready_timeout_s: float
    default_ports: dict[str, int]
    processes: dict[str, Command] = field(repr=False)
    job_commands: dict[str, Command] = field(repr=False)
    demo: tuple[DemoRequest, ...] = ()
    demo_env: dict[str, str] = field(default_factory=dict)
    demo_script: str | None = None

    image_component: str = "api"
    # process → "Kind/name" of the k8s object that replaces its Deployment
    k8s_objects: dict[str, str] = field(default_factory=dict)
    # `[pattern] tag_suffix_from`: the metadata.json whose "version" ends every image tag
    tag_suffix_from: str | None = None

    @property
    def relative(self) -> str:
        return self.directory.relative_to(REPO_ROOT).as_posix()

    def images(self) -> dict[str, str]:
        """Dockerfile name → image tag: `Dockerfile.<component>`, or `Dockerfile` whose
        component is `[pattern] component` (default "api"). Never `:latest` (CONVENTIONS 2)."""
        images: dict[str, str] = {}
        dockerfiles = sorted(self.directory.glob("Dockerfile*"))
        tag = self.tag() if dockerfiles else self.version
        for dockerfile in dockerfiles:
            _, _, component = dockerfile.name.partition(".")
            component = component or self.image_component
            images[dockerfile.name] = f"ml-system-in-actions/{self.name}-{component}:{tag}"
        return images

    def tag(self) -> str:
        """`version`, or `version-<model version>` when the images carry a model: read from
        `tag_suffix_from` (written by `make models`); ImageTagError when it is not there."""
        if self.tag_suffix_from is None:
            return self.version
        path = self.directory / self.tag_suffix_from
        try:
            model_version = json.loads(path.read_text())["version"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ImageTagError(
                f"{path} holds no model version for the image tag ({type(error).__name__}:"
                f" {error}): run `make models` in {self.directory}"
            ) from error
        tag = f"{self.version}-{model_version}"
        if not isinstance(model_version, str) or not TAG.match(tag):
            raise ImageTagError(f"{path}: version {model_version!r} cannot end an image tag")
        return tag

    @classmethod
    def load(cls, directory: Path | str) -> Pattern:
        directory = Path(directory).resolve()
        declared = tomllib.loads((directory / "pattern.toml").read_text())
        meta = declared.get("pattern", {})
        processes = parse_procfile(directory / "Procfile")
        job_commands = parse_procfile(directory / "Procfile.jobs")
        services = tuple(meta.get("services", []))
        unknown = set(services) - set(KNOWN_SERVICES)
        if unknown:
            raise ValueError(f"{directory}: unknown services {sorted(unknown)}")
        jobs = tuple(meta.get("jobs", []))
        missing_jobs = [job for job in jobs if job not in job_commands]
        if missing_jobs:
            raise ValueError(f"{directory}: jobs {missing_jobs} are not in Procfile.jobs")
        unknown_demo_jobs = [
            item["job"] for item in declared.get("demo", [])
            if "job" in item and item["job"] not in job_commands
        ]  # fmt: skip
        if unknown_demo_jobs:
            raise ValueError(f"{directory}: demo jobs {unknown_demo_jobs} not in Procfile.jobs")
        entry = meta.get("entry") or (next(iter(processes)) if processes else None)
        if entry is not None and entry not in processes:
            raise ValueError(f"{directory}: entry {entry!r} is not a Procfile process")
        ready = {
            name: declared.get("processes", {}).get(name, {}).get("ready", "port")
            for name in processes
        }
        default_ports = {
            name: int(table["port"])
            for name, table in declared.get("processes", {}).items()
            if "port" in table
        }
        k8s_objects = {
            name: str(table["k8s"])
            for name, table in declared.get("processes", {}).items()
            if "k8s" in table
        }
        malformed = {name: ref for name, ref in k8s_objects.items() if not K8S_OBJECT.match(ref)}
        if malformed:
            raise ValueError(f"{directory}: k8s must be Kind/name: {malformed}")
        demo = tuple(
            DemoRequest(
                method=item.get("method", "GET").upper(),
                path=item.get("path", ""),
                job=item.get("job"),
                expect=item.get("expect"),
                body=item.get("body"),
                process=item.get("process"),
                title=item.get("title", ""),
                headers=tuple(item.get("headers", ())),
            )
            for item in declared.get("demo", [])
        )
        return cls(
            directory=directory,
            name=meta["name"],
            version=str(meta.get("version", "0.1.0")),
            summary=meta.get("summary", ""),
            services=services,
            entry=entry,
            jobs=jobs,
            ready=ready,
            ready_timeout_s=float(meta.get("ready_timeout_s", 60)),
            default_ports=default_ports,
            processes=processes,
            job_commands=job_commands,
            demo=demo,
            demo_env={key: str(value) for key, value in declared.get("demo_env", {}).items()},
            demo_script=meta.get("demo_script"),
            image_component=meta.get("component", "api"),
            k8s_objects=k8s_objects,
            tag_suffix_from=meta.get("tag_suffix_from"),
        )


def pattern_directories() -> list[Path]:
    """Every pattern directory of the repository (one holding a pattern.toml)."""
    return sorted(path.parent for path in REPO_ROOT.glob("chapter*/*/pattern.toml"))
