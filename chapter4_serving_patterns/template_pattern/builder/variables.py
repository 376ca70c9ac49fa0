"""The variables file, validated: every problem is reported at once, and nothing is rendered
from a file that has one (SPEC 3.10 rule 2)."""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from builder.catalogue import CATALOGUE

NAME = r"^[a-z][a-z0-9_]{2,40}$"
# Kubernetes names (RFC 1123 labels) and quantities, as the manifests need them.
NAMESPACE = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
CPU = r"^([1-9][0-9]{0,5}m|[0-9]{1,3}(\.[0-9]{1,3})?)$"
MEMORY = r"^[1-9][0-9]{0,5}(Ki|Mi|Gi)$"
IMAGE_VERSION = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"  # a docker tag
# The description lands on one Python line (the app's OpenAPI summary): bounded once escaped.
DESCRIPTION_JSON_MAX = 86

Name = Annotated[str, StringConstraints(pattern=NAME)]
Feature = Annotated[str, StringConstraints(min_length=1, max_length=60)]


class Variables(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    name: Name
    model_name: str
    description: Annotated[str, StringConstraints(min_length=1)]
    feature_names: Annotated[list[Feature], Field(min_length=1)]
    data_sample: Annotated[list[list[float]], Field(min_length=1, max_length=5)]
    port: Annotated[int, Field(ge=1024, le=65535)]
    image_version: Annotated[str, StringConstraints(pattern=IMAGE_VERSION)] = "0.1.0"
    replicas: Annotated[int, Field(ge=1, le=100)] = 2
    cpu: Annotated[str, StringConstraints(pattern=CPU)] = "500m"
    memory: Annotated[str, StringConstraints(pattern=MEMORY)] = "512Mi"
    namespace: Annotated[str | None, StringConstraints(pattern=NAMESPACE)] = None

    @property
    def kebab_namespace(self) -> str:
        return self.namespace or self.name.replace("_", "-")


def single_line(value: str) -> bool:
    # printable and in the Basic Multilingual Plane: every target syntax (Python, YAML, TOML,
    # Markdown) reads its JSON escape as the same text
    return value.isprintable() and all(ord(char) <= 0xFFFF for char in value)


def validate(document: Any) -> tuple[Variables | None, list[str]]:
    """The variables, or every problem of the document, one line each: the fields' own
    problems and those between fields (model, widths), both at once."""
    try:
        variables = Variables.model_validate(document)
        problems: list[str] = []
    except ValidationError as error:
        variables = None
        problems = [
            f"{'.'.join(map(str, item['loc'])) or 'variables'}: {item['msg']}"
            for item in error.errors()
        ]
    if isinstance(document, dict):
        problems += cross_field_problems(document)
    if variables is not None and not re.fullmatch(NAMESPACE, variables.kebab_namespace):
        problems.append(f"namespace: {variables.kebab_namespace!r} is no Kubernetes name")
    return (variables if not problems else None), problems


def cross_field_problems(document: dict[str, Any]) -> list[str]:
    """What no single field can say; a field of the wrong type is left to its own message."""
    problems = []
    model_name = document.get("model_name")
    model = CATALOGUE.get(model_name) if isinstance(model_name, str) else None
    if model is None:
        known = ", ".join(sorted(CATALOGUE))
        problems.append(f"model_name: {model_name!r} is no tabular_classification model ({known})")
        return problems
    width = model.feature_count
    features = document.get("feature_names")
    if isinstance(features, list):
        if len(features) != width:
            problems.append(f"feature_names: {len(features)} names, {model_name} takes {width}")
        problems += [
            f"feature_names.{index}: must be one line of printable text"
            for index, feature in enumerate(features)
            if isinstance(feature, str) and not single_line(feature)
        ]
    sample = document.get("data_sample")
    if isinstance(sample, list):
        problems += [
            f"data_sample.{index}: {len(row)} values, {model_name} takes {width}"
            for index, row in enumerate(sample)
            if isinstance(row, list) and len(row) != width
        ]
        values = [value for row in sample if isinstance(row, list) for value in row]
        if any(isinstance(value, float) and not math.isfinite(value) for value in values):
            problems.append("data_sample: a value is not finite")
    description = document.get("description")
    if isinstance(description, str):
        if not single_line(description):
            problems.append("description: must be one line of printable text")
        elif len(json.dumps(description)) > DESCRIPTION_JSON_MAX:
            problems.append(f"description: longer than {DESCRIPTION_JSON_MAX} characters escaped")
    return problems
