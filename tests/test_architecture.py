"""The import contracts in pyproject.toml hold, and they catch a wrong import.

`lint-imports` runs on a copy of the packages laid out as a wheel installs
them: `export/` becomes `kerasll/export/`, which a run in the checkout cannot
see. Each run is a subprocess, so the copy, not the installed packages, is
analysed.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VERDICT = re.compile(r".* (KEPT|BROKEN)( \(\d+ ignored imports?\))?")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
# Package folder in the checkout -> its place in an installed tree.
LAYOUT = {
    "kerasll": "kerasll",
    "export": "kerasll/export",
    "kerasll_cli": "kerasll_cli",
    "serving/kerasll_serving": "kerasll_serving",
}

# Every pair of kerasll's direct sub-packages and modules that import each
# other, directly or not (grimp is import-linter's graph library).
CYCLES = r"""
import itertools, json, grimp
graph = grimp.build_graph("kerasll", cache_dir=None)
children = sorted(graph.find_children("kerasll"))
print(json.dumps([
    [a, b] for a, b in itertools.combinations(children, 2)
    if graph.chain_exists(a, b, as_packages=True)
    and graph.chain_exists(b, a, as_packages=True)
]))
"""


@pytest.fixture
def installed_tree(tmp_path):
    """A copy of the packages as installed, with pyproject.toml's contracts."""
    for source, target in LAYOUT.items():
        shutil.copytree(ROOT / source, tmp_path / target,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def _lint(tree):
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(tree / "pyproject.toml")],
        cwd=tree, capture_output=True, text=True, timeout=600,
    )


def test_the_import_contracts_hold(installed_tree):
    assert (installed_tree / "kerasll" / "export" / "__init__.py").exists()
    done = _lint(installed_tree)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "4 kept, 0 broken" in done.stdout


@pytest.mark.parametrize(
    "module, wrong_import, broken",
    [
        # The engine consumes the Task interface; it never imports a task.
        ("kerasll/active/wrong.py", "import kerasll.tasks", "Layers"),
        # The export sits below the tasks.
        ("kerasll/export/wrong.py", "from kerasll.tasks import task_class",
         "Layers"),
        ("kerasll_serving/wrong.py", "import keras", "kerasll_serving runs"),
        ("kerasll/data_wrong.py", "import click", "Only the command layers"),
        ("kerasll_serving/wrong.py", "import click", "Only the command layers"),
    ],
)
def test_a_wrong_import_breaks_the_contracts(installed_tree, module, wrong_import,
                                            broken):
    (installed_tree / module).write_text(f"{wrong_import}\n", encoding="utf-8")
    done = _lint(installed_tree)
    assert done.returncode == 1, done.stdout[-3000:]
    # A verdict line: "<name> KEPT" or "<name> BROKEN", then "(N ignored
    # import(s))" for a contract with ignore_imports.
    verdicts = [match[1] for line in done.stdout.splitlines()
                if (match := VERDICT.fullmatch(line)) and line.startswith(broken)]
    assert verdicts == ["BROKEN"], done.stdout[-3000:]


def test_no_two_kerasll_sub_packages_import_each_other(installed_tree):
    done = subprocess.run([sys.executable, "-c", CYCLES], cwd=installed_tree,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == []
    # The check can fail: a module that closes a loop is found.
    (installed_tree / "kerasll" / "models_loop.py").write_text(
        "import kerasll.active.experiment\n", encoding="utf-8")
    (installed_tree / "kerasll" / "active" / "loop.py").write_text(
        "import kerasll.models_loop\n", encoding="utf-8")
    again = subprocess.run([sys.executable, "-c", CYCLES], cwd=installed_tree,
                           capture_output=True, text=True, timeout=600)
    assert ["kerasll.active", "kerasll.models_loop"] in json.loads(again.stdout)
