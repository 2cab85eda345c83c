"""Installing warns about nothing; the READMEs point at files that exist."""

import pathlib
import re
import warnings

import pytest
from setuptools.config.pyprojecttoml import apply_configuration
from setuptools.dist import Distribution

ROOT = pathlib.Path(__file__).resolve().parents[1]
# A path into the repository, written inline in backticks or as a link target.
REFERENCE = re.compile(r"`([\w.-]+/[\w./-]*)`|\]\(([\w.-]+/[\w./-]*)\)")


@pytest.mark.parametrize("project", ["pyproject.toml", "serving/pyproject.toml"])
def test_project_metadata_loads_without_setuptools_warnings(project, monkeypatch):
    monkeypatch.chdir((ROOT / project).parent)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        apply_configuration(Distribution(), "pyproject.toml")
    messages = [str(w.message).splitlines()[0] for w in caught
                if "setuptools" in type(w.message).__module__.lower()
                or "Setuptools" in type(w.message).__name__]
    assert messages == []


def _prose(text):
    """The text outside fenced code blocks (where paths are only examples)."""
    return "".join(re.split(r"^```.*?^```", text, flags=re.S | re.M))


@pytest.mark.parametrize("readme", ["README.md", "serving/README.md"])
def test_readme_references_exist(readme):
    base = (ROOT / readme).parent
    text = _prose((ROOT / readme).read_text(encoding="utf-8"))
    folders = {path.name for folder in (ROOT, base) for path in folder.iterdir()}
    missing = []
    for match in REFERENCE.finditer(text):
        reference = match.group(1) or match.group(2)
        into_repo = reference.split("/")[0] in folders
        exists = any((folder / reference).exists() for folder in (ROOT, base))
        if into_repo and not exists:
            missing.append(reference)
    assert missing == []


def test_every_kerasll_package_is_installed():
    """A new sub-package must be listed in pyproject.toml, or a wheel lacks it."""
    configured = apply_configuration(Distribution(), ROOT / "pyproject.toml").packages
    found = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for top in ("kerasll", "kerasll_cli")
        for path in (ROOT / top).rglob("__init__.py")
    }
    assert {"kerasll_cli", "kerasll.active"} <= found
    assert found <= set(configured)
