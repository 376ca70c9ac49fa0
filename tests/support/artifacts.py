"""Static checks of a pattern's deployment artifacts (CONVENTIONS 5, SPEC 0.8 and 0.11), used by
tests/test_artifacts.py.

No Docker engine and no cluster: compose files, manifests and Dockerfiles are validated as files
and checked against what the pattern declares (pattern.toml, Procfile, Procfile.jobs, its settings
and its app's routes). Each check is a plain function of a pattern directory returning problems,
"<file relative to the pattern>: <what is wrong>", so that it can run on a repository pattern or
on a copy broken on purpose.

Conventions the checks define:
- requirements/*.txt start with a comment naming the export command, e.g.
  `# pipenv requirements --hash --categories="packages training"`; the rest of the file equals
  that command's output at the repository root (Pipfile.lock).
- A Dockerfile may COPY files under models/ or data/ that `make models` writes (git-ignored)
  when the comment `# generated: make models` is right above that COPY; every other COPY source
  exists, and .dockerignore excludes none.
- Every Procfile process is a Deployment with a container of its k8s name, unless pattern.toml
  names another rendered object for it (`[processes.<name>] k8s = "CronJob/<name>"`): a loop
  that k8s schedules instead of keeping running.
- Manifests are what `kubectl kustomize manifests` renders (secretGenerator output counts),
  validated against the Kubernetes schemas of K8S_VERSION.
- A Procfile or Procfile.jobs line `env --chdir=<another pattern directory> <command>` runs that
  pattern's own command from its directory (model_load_pattern starts chapter 2's model DB this
  way): compose runs `<command>` from that pattern's image and is checked against that pattern's
  settings, port and routes; its Deployment lives in that pattern's manifests, not here.
- A setting whose default points to this machine (127.0.0.1, localhost, SQLite) is set
  explicitly wherever a process or job reading it runs in compose or k8s. What a command reads:
  the attributes used by the modules it loads (its entry module, gunicorn config file or Alembic
  env.py, followed through `src` imports), all settings when its entry is unknown. HOST only
  matters to long-running processes: jobs do not listen.

The pattern's Python code is imported only in a subprocess (cwd and PYTHONPATH = the pattern
directory): every pattern's package is `src`, so two patterns never share one process.
"""

from __future__ import annotations

import ast
import configparser
import dataclasses
import difflib
import fnmatch
import functools
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import kubernetes_validate.utils as kubernetes_validate
import yaml

from tests.support.pattern import (
    REPO_ROOT,
    Command,
    ImageTagError,
    Pattern,
    pattern_directories,
)

K8S_VERSION = "1.33"
BIN = Path(sys.executable).parent  # kubectl, hadolint, check-jsonschema come with the venv
# Current API versions only. Istio's are CRDs that kubernetes-validate cannot check: they get the
# apiVersion check and a deny-list of renamed fields.
ALLOWED_API_VERSIONS = frozenset(
    {
        "v1",
        "apps/v1",
        "batch/v1",
        "autoscaling/v2",
        "networking.k8s.io/v1",
        "policy/v1",
        "networking.istio.io/v1",
    }
)
ISTIO_DEPRECATED_FIELDS = frozenset({"consecutiveErrors", "mirrorPercent", "mirror_percent"})
IMAGE_PREFIX = "ml-system-in-actions/"
LOOPBACK_MARKERS = ("127.0.0.1", "localhost", "::1", "sqlite")
BIND_SETTINGS = frozenset({"HOST"})
GENERATED_MARKER = "# generated: make models"
GENERATED_DIRECTORIES = ("models/", "data/")
CANONICAL_COMMON = (
    REPO_ROOT / "chapter4_serving_patterns/template_pattern/skeleton/src/common",
    REPO_ROOT / "chapter2_training/model_db/src/common",
)
# The one image preprocessing path (SPEC 0.4): every file of this name is a copy of it.
CANONICAL_IMAGE_INPUT = REPO_ROOT / "chapter2_training/cifar10/src/image_input.py"
# The plain V2 model server `pred` (SPEC 0.5): every pattern that has src/pred/v2.py runs a
# byte-identical copy of prep_pred_pattern's, so that one fix reaches all of them.
CANONICAL_PRED = REPO_ROOT / "chapter4_serving_patterns/prep_pred_pattern"
PRED_FILES = (
    "src/pred/__init__.py",
    "src/pred/app.py",
    "src/pred/v2.py",
    "src/pred/tensors.py",
    "src/pred/gunicorn.conf.py",
    "src/ml/model.py",
    "src/ml/model_dir.py",
    "src/web.py",
    "src/gunicorn_hooks.py",
)
# The reliable job queue (SPEC 0.9): every pattern with src/jobs/store.py runs a byte-identical
# copy of asynchronous_pattern's queue, workers and pred client.
CANONICAL_QUEUE = REPO_ROOT / "chapter4_serving_patterns/asynchronous_pattern"
QUEUE_FILES = (
    "src/jobs/__init__.py",
    "src/jobs/connection.py",
    "src/jobs/store.py",
    "src/worker/__init__.py",
    "src/worker/__main__.py",
    "src/worker/consumer.py",
    "src/worker/status_server.py",
    "src/pred_client.py",
)
# Held by a pattern's client side (prep, proxy, worker) of that server, where it has one.
PRED_CALLER_FILES = ("src/ml/pipeline.py",)
COMPOSE_FILE = "docker-compose.yml"
POD_TEMPLATE_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"})
LONG_RUNNING_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"})
CLUSTER_SCOPED_KINDS = frozenset({"Namespace", "PersistentVolume", "StorageClass", "ClusterRole"})
PROBES = ("readinessProbe", "livenessProbe", "startupProbe")
MODULE_TOKEN = re.compile(r"(src(?:\.\w+)+)(?::(\w+)(\(\))?)?")
URL = re.compile(r"https?://(?P<host>[\w.-]+)(?::(?P<port>\d+))?(?P<path>/[^\s'\"?)]*)?")

Problems = list[str]
Yaml = Any  # a parsed YAML document
T = TypeVar("T")


class ToolMissing(Exception):
    """A validator that is not part of the project environment (pipenv) is not installed."""


# --- small readers -----------------------------------------------------------------------------


def read_yaml_documents(path: Path) -> list[Yaml]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document is not None]


def fingerprint(directory: Path, *names: str) -> str:
    """Digest of some files and trees of a directory (paths relative to it, and contents)."""
    digest = hashlib.sha256()
    for name in names:
        root = directory / name
        for path in sorted(root.rglob("*")) if root.is_dir() else [root]:
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
                digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def content_cache(cache: dict[Any, T], key: Any, compute: Callable[[], T]) -> T:
    """Results that depend on file contents only (`key`), whichever copy they were computed on:
    a broken copy of a pattern reuses what its original computed for the parts it did not break."""
    if key not in cache:
        cache[key] = compute()
    return cache[key]


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=120
    )
    return result.returncode, (result.stdout + result.stderr).strip()


@functools.cache
def load_pattern(directory: Path) -> Pattern:
    return Pattern.load(directory)


def declared_port(directory: Path, command: Command) -> int | None:
    return load_pattern(directory).default_ports.get(command.name)


def delegated(directory: Path, command: Command) -> tuple[Path, Command] | None:
    """(the other pattern's directory, the command it runs) for a line `env --chdir=<dir> ...`
    whose <dir> is another pattern; None for every other line."""
    argv = command.argv
    if len(argv) < 3 or argv[0] != "env" or not argv[1].startswith("--chdir="):
        return None
    owner = (directory / argv[1].partition("=")[2]).resolve()
    if owner == directory.resolve() or not (owner / "pattern.toml").is_file():
        return None
    return owner, Command(command.name, command.env, argv[2:])


def runs_where(directory: Path, command: Command) -> tuple[Path, Command]:
    """The directory whose code, settings and routes a command uses, and the command there."""
    return delegated(directory, command) or (directory, command)


# --- Dockerfiles -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    line: int
    comments: tuple[str, ...]  # the comment lines right above it


def parse_dockerfile(path: Path) -> list[Instruction]:
    instructions: list[Instruction] = []
    comments: list[str] = []
    pending, start = "", 0
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("#"):
            if not pending:
                comments.append(stripped)
            continue  # Docker drops comment lines inside a continued instruction too
        if not stripped:
            comments = comments if pending else []
            continue
        start = start or number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip(), start, tuple(comments)))
        pending, start, comments = "", 0, []
    return instructions


def exec_form(arguments: str) -> list[str] | None:
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError:
        return None
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    return None


@dataclasses.dataclass(frozen=True)
class ImageCommand:
    entrypoint: list[str]
    cmd: list[str] | None  # None: the final stage sets no CMD


def image_command(dockerfile: Path) -> ImageCommand:
    """ENTRYPOINT and CMD of the final stage, as Docker runs them."""
    entrypoint: list[str] = []
    cmd: list[str] | None = None
    for instruction in parse_dockerfile(dockerfile):
        if instruction.keyword == "FROM":
            entrypoint, cmd = [], None
        elif instruction.keyword in ("CMD", "ENTRYPOINT"):
            argv = exec_form(instruction.arguments)
            value = argv if argv is not None else ["/bin/sh", "-c", instruction.arguments]
            if instruction.keyword == "CMD":
                cmd = value
            else:
                entrypoint, cmd = value, None  # a new ENTRYPOINT resets CMD
    return ImageCommand(entrypoint, cmd)


def default_command(dockerfile: Path | None) -> ImageCommand:
    if dockerfile is None or not dockerfile.is_file():
        return ImageCommand([], None)
    return image_command(dockerfile)


@functools.cache
def image_catalogue(directory: Path) -> dict[str, Path]:
    """Image tag → the Dockerfile `make build` builds it from, over every pattern; the checked
    directory comes last, so that a copy of a pattern answers for its own images."""
    catalogue: dict[str, Path] = {}
    for pattern_dir in [*pattern_directories(), directory]:
        try:
            pattern = load_pattern(pattern_dir)
        except (ValueError, KeyError, OSError):
            continue  # that pattern's own checks report it
        for name, tag in pattern.images().items():
            catalogue[tag] = pattern_dir / name
    return catalogue


def split_image(image: str) -> tuple[str, str | None]:
    name = image.split("@", 1)[0]
    repository, colon, tag = name.rpartition(":")
    return (name, None) if not colon or "/" in tag else (repository, tag)


def image_tag_problem(image: str, catalogue: dict[str, Path]) -> str | None:
    """Why an image reference is not pinned, or None."""
    if image.startswith(IMAGE_PREFIX):
        if image in catalogue:
            return None
        known = sorted(tag for tag in catalogue if tag.startswith(split_image(image)[0] + ":"))
        return f"image {image} is not a tag `make build` makes (it makes {known or 'none'})"
    if "@sha256:" in image:
        return None
    tag = split_image(image)[1]
    if tag is None:
        return f"image {image} has no tag (implicitly :latest)"
    if tag == "latest" or not re.search(r"\d", tag):
        return f"image {image} is not pinned to a version"
    return None


# --- what the pattern's code says (settings, routes), asked in a subprocess --------------------

INTROSPECTION = r"""
import importlib, json, sys

def text(value):
    secret = getattr(value, "get_secret_value", None)
    return None if value is None else str(secret() if callable(secret) else value)

def env_names(model, name, field):
    alias = field.validation_alias or field.alias
    if isinstance(alias, str):
        return [alias.upper()]
    choices = [c for c in getattr(alias, "choices", None) or [] if isinstance(c, str)]
    prefix = model.model_config.get("env_prefix", "")
    return [c.upper() for c in choices] or [(prefix + name).upper()]

def settings():
    try:
        module = importlib.import_module("src.configurations")
    except ModuleNotFoundError as missing:
        if missing.name in ("src", "src.configurations"):
            return []
        raise
    from pydantic_settings import BaseSettings
    return [
        {"model": model.__name__, "name": name, "env": env_names(model, name, field),
         "default": text(field.get_default(call_default_factory=True))}
        for model in vars(module).values()
        if isinstance(model, type) and issubclass(model, BaseSettings)
        and model.__module__ == module.__name__
        for name, field in model.model_fields.items()
    ]

def served(target, call, paths):
    from starlette.routing import Match
    module_name, _, attribute = target.partition(":")
    app = getattr(importlib.import_module(module_name), attribute)
    app = app() if call else app
    def serves(path):  # asked the way the app routes a request
        scope = {"type": "http", "method": "GET", "path": path, "root_path": "",
                 "headers": [], "query_string": b""}
        return any(route.matches(scope)[0] == Match.FULL for route in app.router.routes)
    return [path for path in paths if serves(path)]

request = json.loads(sys.argv[1])
paths = request["paths"]
served_paths = {target: served(target, call, paths) for target, call in request["factories"]}
print("@@facts@@" + json.dumps({"settings": settings(), "served": served_paths}))
"""


@dataclasses.dataclass(frozen=True)
class Setting:
    model: str
    name: str  # the Python attribute
    env: tuple[str, ...]
    default: str | None

    @property
    def loopback(self) -> bool:
        default = (self.default or "").lower()
        return any(marker in default for marker in LOOPBACK_MARKERS)


@dataclasses.dataclass(frozen=True)
class Facts:
    settings: tuple[Setting, ...] = ()
    # app factory → which of the probe paths it serves to a GET
    served: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    error: str | None = None


_FACTS: dict[tuple[str, tuple[tuple[str, bool], ...], tuple[str, ...]], Facts] = {}


def app_factory(command: Command) -> tuple[str, bool] | None:
    """(module:attribute, call it?) of the ASGI app a command serves, if it serves one."""
    for token in command.argv:
        match = MODULE_TOKEN.fullmatch(token)
        if match and match.group(2):
            call = bool(match.group(3)) or "--factory" in command.argv
            return f"{match.group(1)}:{match.group(2)}", call
    return None


def facts(directory: Path) -> Facts:
    processes = [
        c for c in load_pattern(directory).processes.values() if delegated(directory, c) is None
    ]
    factories = tuple(sorted({f for c in processes if (f := app_factory(c)) is not None}))
    key = (fingerprint(directory, "src"), factories, probe_paths(directory))
    return content_cache(_FACTS, key, lambda: _facts(factories, key[2], directory))


def _facts(
    factories: tuple[tuple[str, bool], ...], paths: tuple[str, ...], directory: Path
) -> Facts:
    if not (directory / "src").is_dir():
        return Facts()
    # a clean environment: the settings defaults, not this shell's variables
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(directory), "HOME": "/tmp"}
    request = json.dumps({"factories": factories, "paths": paths})
    code, output = run([sys.executable, "-c", INTROSPECTION, request], directory, env)
    marker = output.rfind("@@facts@@")
    if code != 0 or marker < 0:
        tail = "\n".join(output.splitlines()[-15:])
        return Facts(error=f"src: importing the settings and app factories failed:\n{tail}")
    found = json.loads(output[marker + len("@@facts@@") :].splitlines()[0])
    settings = tuple(
        Setting(item["model"], item["name"], tuple(item["env"]), item["default"])
        for item in found["settings"]
    )
    served = {target: tuple(paths) for target, paths in found["served"].items()}
    return Facts(settings, served)


def probe_paths(directory: Path) -> tuple[str, ...]:
    """Every HTTP path the launcher (pattern.toml ready), a compose health check or a k8s probe
    of the pattern asks for."""
    paths = {path for path in load_pattern(directory).ready.values() if path.startswith("/")}
    if (directory / COMPOSE_FILE).is_file():
        for service in load_compose(directory / COMPOSE_FILE).services.values():
            paths |= {url.group("path") or "/" for url in healthcheck_urls(service)}
    for _, template in workloads(render(directory).objects):
        for _, container in pod_containers(template):
            for probe in PROBES:
                http = (container.get(probe) or {}).get("httpGet")
                paths |= {str(http.get("path", "/"))} if http else set()
    return tuple(sorted(paths))


def probe_path_problem(directory: Path, command: Command, path: str) -> str | None:
    factory = app_factory(command)
    served = facts(directory).served.get(factory[0]) if factory else None
    if served is None or path in served:
        return None
    return f"path {path} is not a GET route of the app"


# --- which settings a command reads: `src` imports followed from its entry, statically ---------


def module_files(directory: Path, dotted: str) -> list[Path]:
    parts = dotted.split(".")
    if parts[0] != "src":
        return []
    files = [directory.joinpath(*parts[:depth], "__init__.py") for depth in range(1, len(parts))]
    files += [directory.joinpath(*parts).with_suffix(".py")]
    files += [directory.joinpath(*parts, "__init__.py")]
    return [path for path in files if path.is_file()]


def entry_files(directory: Path, command: Command) -> list[Path]:
    files: list[Path] = []
    for token in command.argv:
        value = token.rpartition("=")[2]  # --config=src/gunicorn.conf.py
        match = MODULE_TOKEN.fullmatch(value)
        if match:
            files += module_files(directory, match.group(1))
        elif value.endswith(".py") and (directory / value).is_file():
            files.append(directory / value)
    if command.argv[0] == "alembic" and (directory / "alembic.ini").is_file():
        ini = configparser.ConfigParser(interpolation=None)
        ini.read(directory / "alembic.ini")
        location = ini.get("alembic", "script_location", fallback="")
        env_py = directory / location.replace("%(here)s", ".") / "env.py"
        files += [env_py] if env_py.is_file() else []
    return files


def imported_files(directory: Path, path: Path) -> list[Path]:
    package = path.relative_to(directory).with_suffix("").parts
    package = package if path.name == "__init__.py" else package[:-1]
    found: list[Path] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [p for alias in node.names for p in module_files(directory, alias.name)]
        elif isinstance(node, ast.ImportFrom):
            parent = package[: len(package) - node.level + 1] if node.level else ()
            base = ".".join([*parent, *([node.module] if node.module else [])])
            found += module_files(directory, base)
            for alias in node.names:
                found += module_files(directory, f"{base}.{alias.name}")
    return found


def used_attributes(directory: Path, command: Command) -> set[str] | None:
    """Attribute names used by the modules the command loads (settings fields among them), or
    None when its entry is unknown."""
    queue = entry_files(directory, command)
    if not queue:
        return None
    seen: set[Path] = set()
    while queue:
        path = queue.pop()
        if path not in seen:
            seen.add(path)
            queue += imported_files(directory, path)
    configurations = directory / "src" / "configurations.py"
    names = {
        node.attr
        for path in seen - {configurations}
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute)
    }
    return names | settings_method_dependencies(configurations, names)


def settings_method_dependencies(configurations: Path, used: set[str]) -> set[str]:
    """Fields read (`self.x`) by the settings properties and methods a command uses."""
    if not configurations.is_file():
        return set()
    methods: dict[str, set[str]] = {}
    for node in ast.walk(ast.parse(configurations.read_text())):
        if isinstance(node, ast.FunctionDef):
            methods[node.name] = {
                inner.attr
                for inner in ast.walk(node)
                if isinstance(inner, ast.Attribute)
                and isinstance(inner.value, ast.Name)
                and inner.value.id == "self"
            }
    found: set[str] = set()
    frontier = used & methods.keys()
    while frontier:
        new = methods[frontier.pop()] - found
        found |= new
        frontier |= new & methods.keys()
    return found


def unset_loopback_settings(
    directory: Path, command: Command, env_names: set[str], *, listens: bool
) -> list[str]:
    """Settings defaulting to this machine that the command reads and `env_names` leaves unset."""
    used = used_attributes(directory, command)
    present = {name.upper() for name in env_names}
    return sorted(
        {
            setting.env[0]
            for setting in facts(directory).settings
            if setting.loopback
            and (used is None or setting.name in used)
            and (listens or not BIND_SETTINGS & set(setting.env))
            and not present & set(setting.env)
        }
    )


# --- compose -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Compose:
    path: Path
    services: dict[str, Yaml]  # this file's own
    names: dict[str, set[str]]  # declared names, included files' too: services, volumes, ...


def load_compose(path: Path) -> Compose:
    document = yaml.safe_load(path.read_text()) or {}
    names = {
        key: set(document.get(key) or {})
        for key in ("services", "volumes", "networks", "secrets", "configs")
    }
    for entry in document.get("include") or []:
        paths = entry if isinstance(entry, str) else entry.get("path", [])
        for included in [paths] if isinstance(paths, str) else paths:
            if (path.parent / included).is_file():
                for key, values in load_compose(path.parent / included).names.items():
                    names[key] |= values
    return Compose(path, dict(document.get("services") or {}), names)


def compose_list(value: Any) -> list[str]:
    return shlex.split(value) if isinstance(value, str) else [str(item) for item in value or []]


def compose_environment(service: Yaml) -> dict[str, str | None]:
    environment = service.get("environment") or {}
    if isinstance(environment, dict):
        return {str(k): None if v is None else str(v) for k, v in environment.items()}
    pairs = [str(item).partition("=") for item in environment]
    return {key: value if sep else None for key, sep, value in pairs}


def compose_dockerfile(service: Yaml, base: Path, catalogue: dict[str, Path]) -> Path | None:
    build = service.get("build")
    if build is None:
        return catalogue.get(str(service.get("image")))
    if isinstance(build, str):
        build = {"context": build}
    context, dockerfile = str(build.get("context", ".")), str(build.get("dockerfile", "Dockerfile"))
    return (base / context / dockerfile).resolve()


def compose_command(service: Yaml, dockerfile: Path | None) -> list[str] | None:
    if "entrypoint" in service:  # replacing the entrypoint drops the image's CMD
        return compose_list(service["entrypoint"]) + compose_list(service.get("command"))
    image = default_command(dockerfile)
    if "command" in service:
        return image.entrypoint + compose_list(service["command"])
    return None if image.cmd is None else image.entrypoint + image.cmd


def compose_container_ports(service: Yaml) -> list[int]:
    ports: list[int] = []
    for item in [*service.get("ports", []), *service.get("expose", [])]:
        text = str(item["target"]) if isinstance(item, dict) else str(item)
        target = text.split("/")[0].rsplit(":", 1)[-1]
        ports += [int(target)] if target.isdigit() else []
    return ports


def healthcheck_urls(service: Yaml) -> list[re.Match[str]]:
    test = (service.get("healthcheck") or {}).get("test") or []
    text = test if isinstance(test, str) else " ".join(str(item) for item in test)
    return list(URL.finditer(text))


def volume_source(volume: Yaml) -> str:
    """The named volume a service mounts ("" for bind mounts and anonymous volumes)."""
    if isinstance(volume, dict):
        source = str(volume.get("source", "")) if volume.get("type") == "volume" else ""
    else:  # SOURCE:TARGET[:MODE]; a lone TARGET is an anonymous volume
        source = str(volume).split(":")[0] if ":" in str(volume) else ""
    return "" if source.startswith((".", "/", "~", "$")) else source


# --- manifests ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Rendered:
    objects: tuple[Yaml, ...]
    problems: tuple[str, ...]


_RENDERED: dict[str, Rendered] = {}


def deploys_nothing(directory: Path) -> bool:
    """A generator-only pattern (template_pattern): no Procfile process, no Procfile.jobs line
    and no Dockerfile, so no image, compose file or manifests to check; the patterns it writes
    carry their own. One Dockerfile or command and every artifact is required again."""
    pattern = load_pattern(directory)
    return not (pattern.processes or pattern.job_commands or any(directory.glob("Dockerfile*")))


def render(directory: Path) -> Rendered:
    """What `kubectl kustomize manifests` renders."""
    if not (directory / "manifests").exists() and deploys_nothing(directory):
        return Rendered((), ())
    return content_cache(_RENDERED, fingerprint(directory, "manifests"), lambda: _render(directory))


def _render(directory: Path) -> Rendered:
    if not (directory / "manifests" / "kustomization.yml").is_file():
        return Rendered((), ("manifests/kustomization.yml: missing",))
    code, output = run([str(BIN / "kubectl"), "kustomize", "manifests"], directory)
    if code != 0:
        output = output.replace(str(directory) + "/", "")
        return Rendered((), (f"manifests: kubectl kustomize failed: {output}",))
    return Rendered(tuple(d for d in yaml.safe_load_all(output) if d is not None), ())


def object_name(obj: Yaml) -> str:
    return f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"


def namespace_of(obj: Yaml) -> str | None:
    if obj.get("kind") in CLUSTER_SCOPED_KINDS:
        return None
    return str((obj.get("metadata") or {}).get("namespace") or "default")


def find_object(objects: tuple[Yaml, ...], kind: Any, name: Any, namespace: str | None) -> Yaml:
    """The rendered object of that kind, name and namespace, or None."""
    wanted = (kind, name, namespace)
    for obj in objects:
        if (obj.get("kind"), (obj.get("metadata") or {}).get("name"), namespace_of(obj)) == wanted:
            return obj
    return None


def pod_template(obj: Yaml) -> Yaml | None:
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    if kind == "CronJob":
        return spec.get("jobTemplate", {}).get("spec", {}).get("template")
    if kind == "Pod":
        return obj
    return spec.get("template") if kind in POD_TEMPLATE_KINDS else None


def workloads(objects: tuple[Yaml, ...]) -> Iterator[tuple[Yaml, Yaml]]:
    """(object, pod template) of every object that runs pods."""
    for obj in objects:
        template = pod_template(obj)
        if template is not None:
            yield obj, template


def pod_containers(template: Yaml) -> Iterator[tuple[bool, Yaml]]:
    """(is an init container, container) of a pod template."""
    spec = template.get("spec") or {}
    for init, key in ((True, "initContainers"), (False, "containers")):
        for container in spec.get(key) or []:
            yield init, container


def pod_labels(template: Yaml) -> dict[str, str]:
    return dict((template.get("metadata") or {}).get("labels") or {})


def container_command(container: Yaml, catalogue: dict[str, Path]) -> list[str] | None:
    if "command" in container:  # k8s command replaces ENTRYPOINT and drops CMD
        return [str(item) for item in [*container["command"], *container.get("args", [])]]
    image = default_command(catalogue.get(str(container.get("image"))))
    if "args" in container:
        return image.entrypoint + [str(item) for item in container["args"]]
    return None if image.cmd is None else image.entrypoint + image.cmd


def container_ports(container: Yaml) -> list[int]:
    return [int(item["containerPort"]) for item in container.get("ports") or []]


def resolve_port(container: Yaml, port: Any) -> int | None:
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        return int(port)
    named = {item.get("name"): item["containerPort"] for item in container.get("ports") or []}
    return int(named[port]) if port in named else None


def data_keys(obj: Yaml) -> set[str]:
    return set((obj or {}).get("data") or {}) | set((obj or {}).get("stringData") or {})


def env_names(container: Yaml, objects: tuple[Yaml, ...], namespace: str | None) -> set[str]:
    """Variables a container gets: env, and envFrom's Secret/ConfigMap keys."""
    names = {str(item["name"]) for item in container.get("env") or []}
    for source in container.get("envFrom") or []:
        for kind, key in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
            if key in source:
                found = find_object(objects, kind, source[key].get("name"), namespace)
                names |= {source.get("prefix", "") + name for name in data_keys(found)}
    return names


def env_references(container: Yaml) -> Iterator[tuple[str, Yaml, bool]]:
    """(kind, reference, names a key?) of every Secret/ConfigMap the container's env reads."""
    for item in container.get("env") or []:
        source = item.get("valueFrom") or {}
        for kind, key in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
            if key in source:
                yield kind, source[key], True
    for item in container.get("envFrom") or []:
        for kind, key in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
            if key in item:
                yield kind, item[key], False


def volume_sources(volume: Yaml) -> Iterator[tuple[str, Any]]:
    """(kind, name) of every object a pod volume needs."""
    if "persistentVolumeClaim" in volume:
        yield "PersistentVolumeClaim", volume["persistentVolumeClaim"].get("claimName")
    for source in [volume, *((volume.get("projected") or {}).get("sources") or [])]:
        secret, config_map = source.get("secret") or {}, source.get("configMap") or {}
        if "secret" in source and not secret.get("optional"):
            # a volume names it secretName, a projected source name
            yield "Secret", secret.get("secretName", secret.get("name"))
        if "configMap" in source and not config_map.get("optional"):
            yield "ConfigMap", config_map.get("name")


def keys_of(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {key for item in value.values() for key in keys_of(item)}
    if isinstance(value, list):
        return {key for item in value for key in keys_of(item)}
    return set()


# === the checks =================================================================================


def check_compose_schema(directory: Path, name: str = COMPOSE_FILE) -> Problems:
    if not (directory / name).is_file():
        return [] if deploys_nothing(directory) else [f"{name}: missing"]
    command = [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", name]
    code, output = run(command, directory)
    return [] if code == 0 else [f"{name}: not valid against the compose specification: {output}"]


def check_manifest_schemas(directory: Path) -> Problems:
    """Rendered objects pass the Kubernetes schemas (--strict), on current API versions, and
    every object written in manifests/ is rendered (so none escapes validation)."""
    rendered = render(directory)
    problems = list(rendered.problems)
    for obj in rendered.objects:
        where = f"manifests: {object_name(obj)}"
        api_version = str(obj.get("apiVersion"))
        if api_version not in ALLOWED_API_VERSIONS:
            problems.append(f"{where}: apiVersion {api_version} is deprecated or not allowed")
        elif api_version.startswith("networking.istio.io/"):
            deprecated = sorted(ISTIO_DEPRECATED_FIELDS & keys_of(obj))
            problems += [f"{where}: {field} is a deprecated Istio field" for field in deprecated]
        else:
            problems += [f"{where}: {p}" for p in kubernetes_problems(obj)]
    if not rendered.problems:
        problems += unrendered_objects(directory, rendered)
    return problems


def kubernetes_problems(obj: Yaml) -> Problems:
    try:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{'.'.join(str(part) for part in error.path)}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError as error:
        return [str(error.message)]
    return []


def unrendered_objects(directory: Path, rendered: Rendered) -> Problems:
    names = {object_name(obj) for obj in rendered.objects}
    return [
        f"manifests/{path.name}: {object_name(document)} is not in what kustomize renders"
        for path in sorted((directory / "manifests").glob("*.y*ml"))
        for document in read_yaml_documents(path)
        if document.get("kind") not in (None, "Kustomization")
        and object_name(document) not in names
    ]


def check_dockerfile(directory: Path, name: str) -> Problems:
    """hadolint at warning level; base images pinned to a version, never :latest."""
    command = [str(BIN / "hadolint"), "--no-color", "--failure-threshold", "warning", name]
    code, output = run(command, directory)
    problems = [f"{name}: hadolint: {output}"] if code != 0 else []
    stages: set[str] = set()
    for instruction in parse_dockerfile(directory / name):
        where = f"{name}:{instruction.line}"
        if instruction.keyword == "FROM":
            words = [word for word in instruction.arguments.split() if not word.startswith("--")]
            if words[0] not in stages and words[0] != "scratch":
                problem = image_tag_problem(words[0], {})
                if problem or "$" in words[0]:
                    problems.append(f"{where}: base {problem or words[0] + ' is not pinned'}")
            if len(words) == 3 and words[1].upper() == "AS":
                stages.add(words[2])
        if re.search(r":latest\b", instruction.arguments):
            problems.append(f"{where}: uses :latest")
    return problems


def check_dockerfile_commands(directory: Path) -> Problems:
    """Each image's exec-form CMD is a Procfile or Procfile.jobs command (CONVENTIONS 2)."""
    pattern = load_pattern(directory)
    commands = [c.argv for c in [*pattern.processes.values(), *pattern.job_commands.values()]]
    problems: Problems = []
    for name in pattern.images():
        cmds = [i for i in parse_dockerfile(directory / name) if i.keyword == "CMD"]
        if not cmds or exec_form(cmds[-1].arguments) is None:
            problems.append(f"{name}: needs an exec-form CMD (a JSON array)")
            continue
        image = image_command(directory / name)
        argv = image.entrypoint + (image.cmd or [])
        if argv not in commands:
            known = [" ".join(command) for command in commands]
            problems.append(
                f"{name}: CMD {argv} equals no Procfile or Procfile.jobs command {known}"
            )
    return problems


def check_copy_sources(directory: Path) -> Problems:
    """COPY sources exist in the build context and .dockerignore keeps none of them out."""
    ignore_file = directory / ".dockerignore"
    ignored = read_lines(ignore_file) if ignore_file.is_file() else []
    problems: Problems = []
    for dockerfile in sorted(load_pattern(directory).images()):
        for instruction in parse_dockerfile(directory / dockerfile):
            if instruction.keyword not in ("COPY", "ADD"):
                continue
            words = exec_form(instruction.arguments) or shlex.split(instruction.arguments)
            if any(word.startswith("--from") for word in words):
                continue  # from another stage or image, not the build context
            where = f"{dockerfile}:{instruction.line}: COPY source"
            generated = GENERATED_MARKER in instruction.comments
            for source in [word for word in words if not word.startswith("--")][:-1]:
                if dockerignored(source, ignored):
                    problems.append(f"{where} {source} is excluded by .dockerignore")
                elif not any(directory.glob(source.lstrip("/"))) and not (
                    generated and source.startswith(GENERATED_DIRECTORIES)
                ):
                    problems.append(f"{where} {source} does not exist")
    return problems


def read_lines(path: Path) -> list[str]:
    """Non-blank lines that are not comments."""
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def dockerignored(source: str, patterns: list[str]) -> bool:
    """Whether .dockerignore patterns exclude a path (the last matching pattern decides)."""
    path, excluded = source.strip("/").removeprefix("./"), False
    for line in patterns:
        pattern = line.lstrip("!").strip("/")
        if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
            excluded = not line.startswith("!")
    return excluded


def check_requirements(directory: Path, name: str) -> Problems:
    """A requirements file equals a fresh export of the categories its header names."""
    lines = (directory / "requirements" / name).read_text().splitlines()
    where = f"requirements/{name}"
    header = next((ln for ln in lines if ln.startswith("#") and "pipenv requirements" in ln), "")
    words = shlex.split(header.lstrip("# "))
    categories = [
        word.partition("=")[2] or words[index + 1]
        for index, word in enumerate(words)
        if word.startswith("--categories")
    ]
    if not categories or "--hash" not in words:
        return [f'{where}: needs a header `# pipenv requirements --hash --categories="..."`']
    expected = pipenv_export(tuple(re.split(r"[,\s]+", categories[0].strip())))
    actual = [line for line in lines if line.strip() and not line.startswith("#")]
    if actual == expected:
        return []
    diff = difflib.unified_diff(expected, actual, "Pipfile.lock", name, lineterm="", n=0)
    regenerate = f"(echo '{header}'; {header.lstrip('# ')}) > requirements/{name}"
    return [
        f"{where}: differs from Pipfile.lock; regenerate from the repository root with "
        f"{regenerate}\n" + "\n".join(list(diff)[:12])
    ]


def pipenv_command() -> list[str]:
    """`pipenv` on PATH, else the module in the system python3 (as env.mk installs it)."""
    if pipenv := shutil.which("pipenv"):
        return [pipenv]
    python3 = shutil.which("python3")
    if python3 and subprocess.run([python3, "-m", "pipenv", "--version"],
                                  capture_output=True, check=False).returncode == 0:  # fmt: skip
        return [python3, "-m", "pipenv"]
    raise ToolMissing("pipenv is not installed (`make setup` installs it)")


@functools.cache
def pipenv_export(categories: tuple[str, ...]) -> list[str]:
    pipenv = pipenv_command()
    env = {
        **os.environ,
        "PIPENV_PIPFILE": str(REPO_ROOT / "Pipfile"),
        "PIPENV_VERBOSITY": "-1",
        "PIPENV_VENV_IN_PROJECT": "1",
    }
    command = [*pipenv, "requirements", "--hash", f"--categories={' '.join(categories)}"]
    result = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=True, timeout=120
    )
    return [line for line in result.stdout.splitlines() if line.strip() and line[0] != "#"]


def canonical_common() -> Path:
    """The template skeleton's src/common once it exists, model_db's until then."""
    return next((path for path in CANONICAL_COMMON if path.is_dir()), CANONICAL_COMMON[-1])


def check_common(directory: Path, canonical: Path) -> Problems:
    """src/common holds byte-identical copies of every canonical module, and nothing else."""
    common = directory / "src" / "common"
    if not common.is_dir() or common.resolve() == canonical.resolve():
        return []
    origin = canonical.relative_to(REPO_ROOT).as_posix()
    copies = {path.name for path in common.glob("*.py")}
    originals = {path.name for path in canonical.glob("*.py")}
    return (
        [f"src/common/{name}: missing (canonical copy in {origin})" for name in originals - copies]
        + [f"src/common/{name}: not a module of {origin}" for name in copies - originals]
        + [
            f"src/common/{name}: differs from {origin}/{name}"
            for name in copies & originals
            if (common / name).read_bytes() != (canonical / name).read_bytes()
        ]
    )


def check_image_input(directory: Path, canonical: Path = CANONICAL_IMAGE_INPUT) -> Problems:
    """Every image_input.py under the pattern is a byte-identical copy of the canonical module,
    so that training, evaluation and every image service preprocess the same way."""
    if not canonical.is_file():
        return []
    origin = (
        canonical.relative_to(REPO_ROOT).as_posix()
        if canonical.is_relative_to(REPO_ROOT)
        else canonical.parent.name
    )
    return [
        f"{path.relative_to(directory).as_posix()}: differs from {origin}"
        for path in sorted(directory.rglob(canonical.name))
        if path.resolve() != canonical.resolve() and path.read_bytes() != canonical.read_bytes()
    ]


def check_pred_server(directory: Path, canonical: Path = CANONICAL_PRED) -> Problems:
    """A pattern with src/pred/v2.py holds byte-identical copies of the canonical pred files,
    and of the caller's pipeline module when it has one."""
    if not (directory / "src/pred/v2.py").is_file():
        return []
    present = [name for name in PRED_CALLER_FILES if (directory / name).is_file()]
    return identical_copies(directory, canonical, (*PRED_FILES, *present))


def check_queue(directory: Path, canonical: Path = CANONICAL_QUEUE) -> Problems:
    """A pattern with src/jobs/store.py holds byte-identical copies of the canonical queue."""
    if not (directory / "src/jobs/store.py").is_file():
        return []
    return identical_copies(directory, canonical, QUEUE_FILES)


def identical_copies(directory: Path, canonical: Path, names: Sequence[str]) -> Problems:
    if directory.resolve() == canonical.resolve():
        return []
    problems = []
    for name in names:
        copy, original = directory / name, canonical / name
        if not copy.is_file():
            problems.append(f"{name}: missing (canonical copy in {canonical.name})")
        elif copy.read_bytes() != original.read_bytes():
            problems.append(f"{name}: differs from {canonical.name}/{name}")
    return problems


def check_pattern_toml(directory: Path) -> Problems:
    """pattern.toml port = settings default of <NAME>_PORT; <NAME>_URL defaults point to it; no
    setting reads a bare PORT (SPEC 0.7); the launcher's readiness path is a route of the app."""
    pattern, found = load_pattern(directory), facts(directory)
    if found.error:
        return [found.error]
    where = "src/configurations.py"
    problems = [f"{where}: {s.name} reads a bare PORT" for s in found.settings if "PORT" in s.env]
    for name, command in pattern.processes.items():
        port = pattern.default_ports.get(name)
        if port is None:
            problems.append(f"pattern.toml: [processes.{name}] has no port")
            continue
        owner = delegated(directory, command)
        if owner is not None:  # its settings and routes are checked in its own pattern
            problems += delegated_port_problems(owner, name, port)
            continue
        defaults = {s.default for s in found.settings if command.port_variable in s.env}
        if found.settings and defaults != {str(port)}:
            problems.append(
                f"{where}: {command.port_variable} defaults to {sorted(map(str, defaults))}, "
                f"pattern.toml says {port}"
            )
        url = f"http://127.0.0.1:{port}"
        problems += [
            f"{where}: {command.url_variable} defaults to {setting.default}, not {url}"
            for setting in found.settings
            if command.url_variable in setting.env and (setting.default or "").rstrip("/") != url
        ]
        ready = pattern.ready[name]
        problem = probe_path_problem(directory, command, ready) if ready.startswith("/") else None
        problems += [f"pattern.toml: [processes.{name}] ready {problem}"] if problem else []
    return problems


def delegated_port_problems(owner: tuple[Path, Command], name: str, port: int) -> Problems:
    """A process run from another pattern is that pattern's process, on its port."""
    owner_dir, command = owner
    where = f"pattern.toml: [processes.{name}]"
    owner_pattern = load_pattern(owner_dir)
    expected = owner_pattern.processes.get(name)
    if expected is None or expected.argv != command.argv:
        return [f"{where} runs {command.argv}, no Procfile line of {owner_pattern.relative}"]
    owner_port = owner_pattern.default_ports.get(name)
    return [] if owner_port == port else [f"{where} port {port} is not {owner_port} (its pattern)"]


def check_compose_processes(directory: Path) -> Problems:
    """One service per Procfile process, running its command with its VAR=value pairs; every
    service of this pattern's images runs a Procfile or Procfile.jobs command; jobs are one-shot
    (SPEC 0.8); loopback settings set; ports and health checks on the process port and routes."""
    path = directory / COMPOSE_FILE
    pattern, found = load_pattern(directory), facts(directory)
    if not path.is_file() and not found.error and deploys_nothing(directory):
        return []
    if not path.is_file() or found.error:
        return [found.error or f"{COMPOSE_FILE}: missing"]
    compose, catalogue = load_compose(path), image_catalogue(directory)
    problems = [
        f"{COMPOSE_FILE}: no service {name} for the Procfile process"
        for name in pattern.processes
        if name not in compose.services
    ]
    jobs: set[str] = set()
    for service_name, service in compose.services.items():
        where = f"{COMPOSE_FILE}: service {service_name}"
        argv = compose_command(service, compose_dockerfile(service, path.parent, catalogue))
        process = pattern.processes.get(service_name)
        # (directory, command) the service runs: another pattern's for `env --chdir=...` lines
        ran = runs_where(directory, process) if process is not None else None
        job = next(
            (where_and_job for j in pattern.job_commands.values()
             if (where_and_job := runs_where(directory, j))[1].argv == argv),
            None,
        )  # fmt: skip
        if ran is None and job is None:
            if service.get("image") in pattern.images().values():
                problems.append(f"{where}: runs {argv}, no Procfile or Procfile.jobs command")
            continue  # otherwise another project's image (postgres, redis) or another pattern's
        if ran is not None and argv != ran[1].argv:
            problems.append(f"{where}: runs {argv}, the Procfile says {ran[1].argv}")
            continue
        if ran is None:
            jobs.add(service_name)
            if service.get("restart") != "no":
                problems.append(f'{where}: a one-shot job needs restart: "no"')
        chosen = ran or job
        assert chosen is not None
        owner_dir, command = chosen
        problems += compose_service_problems(owner_dir, where, service, command, ran is not None)
    return problems + job_dependency_problems(compose, jobs)


def compose_service_problems(
    directory: Path, where: str, service: Yaml, command: Command, listens: bool
) -> Problems:
    environment = compose_environment(service)
    problems = [
        f"{where}: environment needs {key}={value} (Procfile)"
        for key, value in command.env.items()
        if environment.get(key) != value
    ]
    problems += [
        f"{where}: environment must set {name} (its default points to this machine)"
        for name in unset_loopback_settings(directory, command, set(environment), listens=listens)
    ]
    if not listens:
        return problems
    port = declared_port(directory, command)
    problems += [
        f"{where}: container port {p} is not the process port {port}"
        for p in compose_container_ports(service)
        if p != port
    ]
    for url in healthcheck_urls(service):
        if url.group("host") in ("127.0.0.1", "localhost") and url.group("port") != str(port):
            problems.append(f"{where}: healthcheck port {url.group('port')} is not {port}")
        problem = probe_path_problem(directory, command, url.group("path") or "/")
        problems += [f"{where}: healthcheck {problem}"] if problem else []
    return problems


def job_dependency_problems(compose: Compose, jobs: set[str]) -> Problems:
    """Services that wait for a job wait for it to complete successfully (SPEC 0.8)."""
    problems: Problems = []
    for service_name, service in compose.services.items():
        depends = service.get("depends_on") or {}
        for job in sorted(jobs & set(depends)):
            condition = depends[job].get("condition") if isinstance(depends, dict) else None
            if condition != "service_completed_successfully":
                problems.append(
                    f"{COMPOSE_FILE}: service {service_name} must wait for job {job} with "
                    "condition: service_completed_successfully"
                )
    return problems


def check_compose_references(directory: Path) -> Problems:
    """Volumes, networks, secrets, configs and depends_on name something declared."""
    path = directory / COMPOSE_FILE
    if not path.is_file():
        return [] if deploys_nothing(directory) else [f"{COMPOSE_FILE}: missing"]
    compose = load_compose(path)
    problems: Problems = []
    for service_name, service in compose.services.items():
        where = f"{COMPOSE_FILE}: service {service_name}"
        volumes = [volume_source(volume) for volume in service.get("volumes") or []]
        problems += [
            f"{where}: volume {name} is not declared under the top-level volumes"
            for name in volumes
            if name and name not in compose.names["volumes"]
        ]
        for key, declared in (("depends_on", "services"), ("networks", "networks")):
            known = compose.names[declared] | {"default"}
            problems += [
                f"{where}: {key} names {name}, which is not declared"
                for name in service.get(key) or []
                if name not in known
            ]
        for key in ("secrets", "configs"):
            for item in service.get(key) or []:
                name = item if isinstance(item, str) else item.get("source")
                if name not in compose.names[key]:
                    problems.append(f"{where}: {key} names {name}, which is not declared")
    return problems


def check_image_tags(directory: Path) -> Problems:
    """Images in compose and manifests: this repository's as `make build` tags them, other
    projects' pinned to a version; a compose `build:` tags its image as `make build` does."""
    try:
        load_pattern(directory).images()
    except ImageTagError as error:  # the tags carry a model version that is not there yet
        return [f"pattern.toml: no image tag: {error}"]
    catalogue = image_catalogue(directory)
    problems: Problems = []
    path = directory / COMPOSE_FILE
    services = load_compose(path).services if path.is_file() else {}
    for service_name, service in services.items():
        where = f"{COMPOSE_FILE}: service {service_name}"
        image = str(service.get("image", ""))
        problem = image_tag_problem(image, catalogue) if image else "needs an image tag"
        problems += [f"{where}: {problem}"] if problem else []
        dockerfile = compose_dockerfile(service, path.parent, catalogue)
        if "build" in service and dockerfile != catalogue.get(image):
            problems.append(
                f"{where}: builds {dockerfile} but `make build` does not tag it {image}"
            )
    for obj, template in workloads(render(directory).objects):
        for _, container in pod_containers(template):
            problem = image_tag_problem(str(container.get("image")), catalogue)
            if problem:
                where = f"manifests: {object_name(obj)} container {container.get('name')}"
                problems.append(f"{where}: {problem}")
    return problems


def check_manifest_processes(directory: Path) -> Problems:
    """A Deployment and a container named `<process, _ → ->` per Procfile process (or the object
    pattern.toml names for it), running its command with its VAR=value pairs on its port, probes
    on its routes; init containers, Jobs and CronJobs of this pattern's images run Procfile.jobs
    commands; loopback settings set."""
    rendered, pattern, found = render(directory), load_pattern(directory), facts(directory)
    if rendered.problems or found.error:
        return [*rendered.problems, *([found.error] if found.error else [])]
    deployments = {
        (obj["metadata"]["name"], container.get("name"))
        for obj, template in workloads(rendered.objects)
        if obj.get("kind") == "Deployment"
        for init, container in pod_containers(template)
        if not init
    }
    rendered_names = {object_name(obj) for obj in rendered.objects}
    problems = [
        f"manifests: no Deployment {c.k8s_name} with a container {c.k8s_name} (Procfile {name})"
        for name, c in pattern.processes.items()
        if name not in pattern.k8s_objects
        and (c.k8s_name, c.k8s_name) not in deployments
        and delegated(directory, c) is None  # deployed by its own pattern's manifests
    ]
    problems += [
        f"manifests: no {replacement}, which runs Procfile {name} in k8s (pattern.toml)"
        for name, replacement in pattern.k8s_objects.items()
        if replacement not in rendered_names
    ]
    for obj, template in workloads(rendered.objects):
        for init, container in pod_containers(template):
            where = f"manifests: {object_name(obj)} container {container.get('name')}"
            long_running = obj.get("kind") in LONG_RUNNING_KINDS and not init
            problems += [
                f"{where}: {problem}"
                for problem in container_problems(directory, container, long_running, rendered, obj)
            ]
    return problems


def container_problems(
    directory: Path, container: Yaml, long_running: bool, rendered: Rendered, obj: Yaml
) -> Problems:
    pattern = load_pattern(directory)
    argv = container_command(container, image_catalogue(directory))
    if long_running:
        process = next(
            (p for p in pattern.processes.values() if p.k8s_name == container.get("name")), None
        )
        if process is None:
            own = container.get("image") in pattern.images().values()
            return [f"runs {argv}, no Procfile process is named after it"] if own else []
        if argv != process.argv:
            return [f"runs {argv}, the Procfile says {process.argv}"]
        command = process
    else:
        job = next((j for j in pattern.job_commands.values() if j.argv == argv), None)
        if job is None:
            own = container.get("image") in pattern.images().values()
            return [f"runs {argv}, not a Procfile.jobs command"] if own else []
        command = job
    values = {item["name"]: item.get("value") for item in container.get("env") or []}
    problems = [
        f"env needs {key}={value} (Procfile)"
        for key, value in command.env.items()
        if values.get(key) != value
    ]
    names = env_names(container, rendered.objects, namespace_of(obj))
    problems += [
        f"env must set {name} (its default points to this machine)"
        for name in unset_loopback_settings(directory, command, names, listens=long_running)
    ]
    return problems + (port_problems(directory, container, command) if long_running else [])


def port_problems(directory: Path, container: Yaml, command: Command) -> Problems:
    """containerPort and probe ports are the process port; HTTP probes hit the app's routes."""
    port = declared_port(directory, command)
    ports = container_ports(container)
    problems = [f"containerPort {p} is not the process port {port}" for p in ports if p != port]
    problems += [] if ports else [f"declares no containerPort (process port {port})"]
    # a worker without an HTTP API (ready = "port") may have a liveness probe only (SPEC 0.11)
    http = load_pattern(directory).ready.get(command.name, "port").startswith("/")
    required = ["livenessProbe", *(["readinessProbe"] if http else [])]
    problems += [f"has no {probe}" for probe in required if probe not in container]
    for probe_name in PROBES:
        probe = container.get(probe_name) or {}
        for handler in ("httpGet", "tcpSocket", "grpc"):
            if handler not in probe:
                continue
            probe_port = probe[handler].get("port")
            if resolve_port(container, probe_port) != port:
                problems.append(f"{probe_name} port {probe_port} is not the process port {port}")
            if handler == "httpGet":
                path = probe[handler].get("path", "/")
                problem = probe_path_problem(directory, command, path)
                problems += [f"{probe_name} {problem}"] if problem else []
    return problems


def check_manifest_services(directory: Path) -> Problems:
    """Service selectors select pods of the same namespace, and their targetPorts are
    containerPorts of those pods; workload selectors match their own pod labels."""
    rendered = render(directory)
    problems = list(rendered.problems)
    pods = list(workloads(rendered.objects))
    for obj, template in pods:
        selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if selector.items() - pod_labels(template).items():
            where = f"manifests: {object_name(obj)}"
            problems.append(f"{where}: selector {selector} does not match its pod labels")
    for service in (obj for obj in rendered.objects if obj.get("kind") == "Service"):
        where = f"manifests: {object_name(service)}"
        selector = (service.get("spec") or {}).get("selector")
        if not selector:
            continue  # endpoints managed elsewhere
        containers = [
            container
            for obj, template in pods
            if namespace_of(obj) == namespace_of(service)
            and not selector.items() - pod_labels(template).items()
            for _, container in pod_containers(template)
        ]
        if not containers:
            problems.append(f"{where}: selector {selector} matches no pod template")
            continue
        for port in service["spec"].get("ports") or []:
            target = port.get("targetPort", port.get("port"))
            if not any(resolve_port(c, target) in container_ports(c) for c in containers):
                problems.append(f"{where}: targetPort {target} is no containerPort of its pods")
    return problems


def check_manifest_references(directory: Path) -> Problems:
    """Every PVC, Secret, ConfigMap and volume a pod names, and every HPA target, is rendered."""
    rendered = render(directory)
    problems = list(rendered.problems)
    objects = rendered.objects
    for obj, template in workloads(objects):
        namespace, where = namespace_of(obj), f"manifests: {object_name(obj)}"
        spec = template.get("spec") or {}
        claims = (obj.get("spec") or {}).get("volumeClaimTemplates") or []
        volumes = {str(volume.get("name")) for volume in spec.get("volumes") or []}
        volumes |= {str(claim["metadata"]["name"]) for claim in claims}
        for volume in spec.get("volumes") or []:
            problems += [
                f"{where}: volume {volume.get('name')} needs {kind} {name}, which is not rendered"
                for kind, name in volume_sources(volume)
                if find_object(objects, kind, name, namespace) is None
            ]
        for _, container in pod_containers(template):
            mounts = [mount.get("name") for mount in container.get("volumeMounts") or []]
            problems += [
                f"{where}: container {container.get('name')} mounts {name}, not a pod volume"
                for name in mounts
                if name not in volumes
            ]
            for kind, reference, keyed in env_references(container):
                if reference.get("optional"):
                    continue
                found = find_object(objects, kind, reference.get("name"), namespace)
                if found is None:
                    problems.append(f"{where}: env needs {kind} {reference.get('name')}")
                elif keyed and reference.get("key") not in data_keys(found):
                    name, key = reference.get("name"), reference.get("key")
                    problems.append(f"{where}: env needs key {key} of {kind} {name}")
    for hpa in (obj for obj in objects if obj.get("kind") == "HorizontalPodAutoscaler"):
        target = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        if find_object(objects, target.get("kind"), target.get("name"), namespace_of(hpa)) is None:
            problems.append(f"manifests: {object_name(hpa)}: scaleTargetRef {target} is missing")
    return problems


def check_pod_hardening(directory: Path) -> Problems:
    """Every container: cpu and memory requests, a memory limit, non-root, no privilege
    escalation (CONVENTIONS 2: resources and a non-root securityContext on every component)."""
    rendered = render(directory)
    problems = list(rendered.problems)
    for obj, template in workloads(rendered.objects):
        pod_security = (template.get("spec") or {}).get("securityContext") or {}
        for _, container in pod_containers(template):
            where = f"manifests: {object_name(obj)} container {container.get('name')}"
            resources = container.get("resources") or {}
            own_security = container.get("securityContext") or {}
            security = {**pod_security, **own_security}
            if not {"cpu", "memory"} <= set(resources.get("requests") or {}):
                problems.append(f"{where}: needs cpu and memory requests")
            if "memory" not in (resources.get("limits") or {}):
                problems.append(f"{where}: needs a memory limit")
            if security.get("runAsNonRoot") is not True:
                problems.append(f"{where}: needs runAsNonRoot: true")
            if own_security.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: needs allowPrivilegeEscalation: false")
    return problems
