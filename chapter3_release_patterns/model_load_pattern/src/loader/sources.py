"""Where a model comes from (SPEC 2.2 behaviour 1): the three kinds of MODEL_SOURCE.

    modeldb://iris/iris_svc@production    an alias of a model in the model DB (MODEL_DB_URL)
    modeldb://iris/iris_svc/2             a version number of it
    file:///srv/models/iris_svc           a model directory (or .../iris_svc/model.onnx)
    https://example.org/iris/model.onnx   a model.onnx next to its label.json and metadata.json

Parsing only: no I/O. A string that is none of these raises InvalidSource with the reason, so a
bad setting fails at start-up and a bad `/admin/reload` body is a 422.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

MODEL_FILE = "model.onnx"
NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"  # the model DB's project and model names
ALIAS = r"[a-z][a-z0-9_-]{0,31}"  # the model DB's alias names
MODELDB = re.compile(
    rf"modeldb://(?P<project>{NAME})/(?P<model>{NAME})"
    rf"(?:@(?P<alias>{ALIAS})|/(?P<version>[1-9][0-9]{{0,9}}))"
)


class InvalidSource(ValueError):
    """The text is not a source this loader understands; the message says why."""


@dataclass(frozen=True)
class ModelDbSource:
    project: str
    model: str
    ref: str  # an alias or a version number, as the registry endpoint takes it

    @property
    def is_alias(self) -> bool:
        return not self.ref.isdigit()

    def describe_ref(self) -> str:
        """ "alias production" or "version 2", for messages."""
        return f"alias {self.ref}" if self.is_alias else f"version {self.ref}"


@dataclass(frozen=True)
class FileSource:
    directory: PurePosixPath  # absolute


@dataclass(frozen=True)
class HttpSource:
    base_url: str  # ends with "/": the directory URL that holds the three files


Source = ModelDbSource | FileSource | HttpSource


def parse_source(text: str) -> Source:
    text = text.strip()
    scheme = text.partition("://")[0].lower()
    if scheme == "modeldb":
        return _modeldb(text)
    if scheme == "file":
        return _file(text)
    if scheme in ("http", "https"):
        return _http(text)
    raise InvalidSource(
        f"{text!r}: expected modeldb://<project>/<model>@<alias> or .../<model>/<version>, "
        "file:///<model directory> or http(s)://.../model.onnx"
    )


def _modeldb(text: str) -> ModelDbSource:
    match = MODELDB.fullmatch(text)
    if match is None:
        raise InvalidSource(
            f"{text!r}: expected modeldb://<project>/<model>@<alias> or "
            "modeldb://<project>/<model>/<version number>"
        )
    ref = match.group("alias") or match.group("version")
    return ModelDbSource(match.group("project"), match.group("model"), ref)


def _file(text: str) -> FileSource:
    parts = urlsplit(text)
    if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
        raise InvalidSource(f"{text!r}: expected file:///<absolute path>")
    path = PurePosixPath(unquote(parts.path))
    if not path.is_absolute() or str(path) == "/":
        raise InvalidSource(f"{text!r}: expected file:///<absolute path of a model directory>")
    return FileSource(path.parent if path.name == MODEL_FILE else path)


def _http(text: str) -> HttpSource:
    parts = urlsplit(text)
    if not parts.hostname or parts.fragment:
        raise InvalidSource(f"{text!r}: not an http(s) URL with a host")
    if parts.query:
        raise InvalidSource(f"{text!r}: a query string cannot name the neighbouring files")
    path = parts.path
    if path.endswith("/" + MODEL_FILE):
        path = path[: -len(MODEL_FILE)]
    elif not path.endswith("/"):
        raise InvalidSource(f"{text!r}: expected a URL ending in /{MODEL_FILE} (or a directory /)")
    return HttpSource(f"{parts.scheme}://{parts.netloc}{path}")
