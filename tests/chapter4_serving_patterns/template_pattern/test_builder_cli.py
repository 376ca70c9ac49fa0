"""SPEC 3.10 acceptance 3-5 and behaviour 2-3: what the generator refuses (exit 2, nothing
written), --force, escaping, and the committed sample/ reproduced byte for byte."""

from __future__ import annotations

import ast
import shutil
import tomllib
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from builder.render import UnsafeValue, guarded
from markupsafe import Markup

from tests.chapter4_serving_patterns.template_pattern.conftest import (
    TEMPLATE_DIR,
    USAGE_ERROR,
    VARS_FILE,
    Generate,
    rendered_files,
    run_builder,
    sample_variables,
)


def variables(**changes: Any) -> dict[str, Any]:
    return {**sample_variables(), **changes}


def assert_refused(result: Any, *fragments: str) -> None:
    assert result.returncode == USAGE_ERROR, result.stdout + result.stderr
    assert "nothing written" in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def test_a_data_sample_narrower_than_the_model_is_refused(
    generate: Generate, tmp_path: Path
) -> None:
    result = generate(variables(data_sample=[[5.1, 3.5, 1.4]]))
    assert_refused(result, "data_sample.0: 3 values, iris_svc takes 4")
    assert not (tmp_path / "out").exists()
    assert [path.name for path in tmp_path.iterdir()] == ["vars.yaml"]  # no staging left


def test_every_problem_is_listed_at_once(generate: Generate, tmp_path: Path) -> None:
    result = generate(
        variables(port=80, colour="blue", feature_names=["a", "b"], model_name="digits_resnet")
    )
    assert_refused(result, "port:", "colour: Extra inputs are not permitted", "model_name:")
    assert not (tmp_path / "out").exists()
    result = generate(variables(port=80, feature_names=["a", "b"], data_sample=[[1.0, 2.0]]))
    assert_refused(result, "port:", "feature_names: 2 names", "data_sample.0: 2 values")


@pytest.mark.parametrize("model_name", ["iris_ocs", "digits_resnet", "iris_svm"])
def test_a_model_that_is_no_tabular_classifier_of_the_catalogue_is_refused(
    generate: Generate, model_name: str
) -> None:
    assert_refused(generate(variables(model_name=model_name)), "model_name:")


def test_a_binary_model_generates_its_pattern(generate: Generate, tmp_path: Path) -> None:
    result = generate(variables(model_name="iris_binary_setosa"))
    assert result.returncode == 0, result.stderr
    makefile = (tmp_path / "out" / "Makefile").read_text()
    assert "chapter2_training/iris_binary\n" in makefile
    assert "models/iris_binary_setosa/" in makefile


def test_an_existing_output_dir_is_refused_unless_forced(
    generate: Generate, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert_refused(generate(variables()), "exists: pass --force")
    assert [path.name for path in out.iterdir()] == ["keep.txt"]
    assert (out / "keep.txt").read_text() == "mine"

    result = generate(variables(), None, "--force")
    assert result.returncode == 0, result.stderr
    assert not (out / "keep.txt").exists()
    assert (out / "pattern.toml").is_file()


@pytest.mark.parametrize(
    "name", ['iris"; import os #', "iris\nimport os", "iris'x", "Iris_upper", "ab", "x" * 42]
)
def test_a_name_with_quotes_newlines_or_outside_the_pattern_is_refused(
    generate: Generate, tmp_path: Path, name: str
) -> None:
    assert_refused(generate(variables(name=name)), "name:")
    assert_refused(generate(variables(), None, "--name", name), "name:")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "description", ["multi\nline", "tab\there", "x" * 90, 'many "quotes" ' * 7, "emoji 🙂"]
)
def test_a_description_that_cannot_stay_one_escaped_line_is_refused(
    generate: Generate, description: str
) -> None:
    assert_refused(generate(variables(description=description)), "description:")


def test_a_description_with_quotes_renders_as_data(generate: Generate, tmp_path: Path) -> None:
    text = """He said "x" + 'y'; \\ {{ name }} {% raw %} <b>#1</b> `rm` """
    result = generate(variables(description=text))
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    app = ast.parse((out / "src" / "app" / "app.py").read_text())
    summaries = [
        node.value
        for node in app.body
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "SUMMARY"
    ]
    assert len(summaries) == 1 and ast.literal_eval(summaries[0]) == text
    pattern = tomllib.loads((out / "pattern.toml").read_text())
    assert pattern["pattern"]["summary"] == text
    readme = (out / "README.md").read_text()
    assert "\\{\\{ name \\}\\}" in readme and "<b>" not in readme


def test_feature_names_with_quotes_render_as_data(generate: Generate, tmp_path: Path) -> None:
    names = ['a"b', "c'd", "e\\f", "{{ g }}"]
    assert generate(variables(feature_names=names)).returncode == 0
    conftest = ast.parse((tmp_path / "out" / "tests" / "conftest.py").read_text())
    found = [
        ast.literal_eval(node.value)
        for node in conftest.body
        if isinstance(node, ast.AnnAssign) and ast.unparse(node.target) == "FEATURE_NAMES"
        and node.value is not None
    ]  # fmt: skip
    assert found == [names]


def test_a_value_written_without_an_escaping_filter_is_refused() -> None:
    assert guarded("iris_svc") == "iris_svc"
    assert guarded(8000) == 8000
    assert guarded(Markup('"a\\"b"')) == '"a\\"b"'
    with pytest.raises(UnsafeValue):
        guarded('a"b')
    with pytest.raises(UnsafeValue):
        guarded("a\nb")


def test_unknown_keys_are_refused(generate: Generate) -> None:
    assert_refused(generate(variables(replica=3)), "replica: Extra inputs are not permitted")


def test_the_namespace_defaults_to_the_kebab_name(generate: Generate, tmp_path: Path) -> None:
    assert generate(variables(name="my_iris_api")).returncode == 0
    kustomization = yaml.safe_load(
        (tmp_path / "out" / "manifests" / "kustomization.yml").read_text()
    )
    assert kustomization["namespace"] == "my-iris-api"


def test_regenerating_the_sample_reproduces_the_committed_files() -> None:
    # Next to sample/, so that the Makefile's relative path to the repository root is the same.
    target = TEMPLATE_DIR / f".regenerated-{uuid.uuid4().hex}"
    try:
        result = run_builder(VARS_FILE, target)
        assert result.returncode == 0, result.stderr
        assert rendered_files(target) == rendered_files(TEMPLATE_DIR / "sample")
    finally:
        shutil.rmtree(target, ignore_errors=True)
