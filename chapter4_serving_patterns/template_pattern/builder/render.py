"""skeleton/ rendered into a pattern directory: `*.j2` files through Jinja2 (the suffix
dropped), every other file copied byte for byte (src/common: the canonical modules).

Values reach the output only through escaping filters: `tojson` for Python, YAML and TOML
literals, `markdown` for README text. A bare `{{ value }}` is allowed only for values whose
characters cannot break out of any of those syntaxes (validated names, numbers); `guarded`
refuses anything else at render time, so a template cannot forget the filter unnoticed.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from builder.catalogue import CATALOGUE
from builder.variables import Variables

BUILDER_DIR = Path(__file__).resolve().parent
SKELETON = BUILDER_DIR.parent / "skeleton"
REPO_ROOT = BUILDER_DIR.parents[2]
TEMPLATE_SUFFIX = ".j2"
BARE_SAFE = re.compile(r"^[A-Za-z0-9_./-]*$")
MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>&~])")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".ruff_cache")


class UnsafeValue(ValueError):
    """A template writes a value with characters that need an escaping filter."""


def guarded(value: Any) -> Any:
    if isinstance(value, Markup) or not isinstance(value, str) or BARE_SAFE.match(value):
        return value
    raise UnsafeValue(f"{value!r} written without an escaping filter (tojson, markdown)")


def markdown(value: str) -> Markup:
    """Text as Markdown shows it literally (one line: the variables refuse line breaks)."""
    return Markup(MARKDOWN_SPECIAL.sub(r"\\\1", value))


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(SKELETON),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # HTML escaping is wrong for code: the filters above escape instead
        finalize=guarded,
        keep_trailing_newline=True,
    )
    env.filters["markdown"] = markdown
    # Key order as written (data rows, feature lists); compact JSON would break Python lines.
    env.policies["json.dumps_kwargs"] = {"sort_keys": False}
    return env


def context(variables: Variables, output_dir: Path) -> dict[str, Any]:
    model = CATALOGUE[variables.model_name]
    root = os.path.relpath(REPO_ROOT, output_dir.resolve())
    return {
        **variables.model_dump(exclude={"namespace"}),
        "namespace": variables.kebab_namespace,
        "trainer": model.trainer,
        "classes": model.classes,
        "repo_root": Path(root).as_posix(),
    }


def render_tree(variables: Variables, output_dir: Path, force: bool) -> None:
    """Render into a temporary directory next to `output_dir`, then move it into place: a
    failed render leaves nothing behind, and `--force` replaces the old tree only at the end."""
    values = context(variables, output_dir)
    env = environment()
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}-", dir=output_dir.parent))
    try:
        tree = staging / "tree"
        shutil.copytree(SKELETON, tree, ignore=IGNORED)
        for template in sorted(tree.rglob(f"*{TEMPLATE_SUFFIX}")):
            name = template.relative_to(tree).as_posix()
            text = env.get_template(name).render(values)
            template.with_suffix("").write_text(text)
            template.unlink()
        if output_dir.exists():
            if not force:
                raise FileExistsError(output_dir)
            shutil.rmtree(output_dir)
        tree.rename(output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
