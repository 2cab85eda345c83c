"""Runs `kerasll demo` at a chain of commits and compares their results.csv.

Each commit is checked out into a temporary git worktree and its demo runs
with that tree's code (the editable install's import finders are removed, so
the venv's packages come from site-packages but kerasll's own code from the
worktree). Each row of the Markdown table compares a commit's results.csv
with the previous commit's that ran, on the columns both files have.

Example:
    .venv/bin/python benchmarks/demo_chain.py --repo . --out /tmp/chain \\
        --commits 641d5c7 65db7ad

A commit whose `<out>/<sha>/results.csv` already exists is not run again;
use one --out per --demo-args (e.g. "--cycles 2 --epochs 4" for a quick look).
"""

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

# Runs in the worktree: drops the editable finders, runs the console script
# [project.scripts] names, then checks that every kerasll module came from it.
RUNNER = """
import importlib, os, sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in f.__module__]
tree, entry, out, *demo_args = sys.argv[1:]
module, _, function = entry.partition(":")
sys.argv = ["kerasll", "demo", "--out", out, *demo_args]
try:
    getattr(importlib.import_module(module), function)()
except SystemExit as stop:
    if stop.code:
        raise
for name, mod in sorted(sys.modules.items()):
    path = getattr(mod, "__file__", None)
    if name.startswith("kerasll") and path:
        assert os.path.realpath(path).startswith(tree), (name, path)
print("kerasll from", sys.modules["kerasll"].__file__)
"""


def _git(repo, *args):
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def run_demo(repo, sha, out_dir, python, demo_args=()):
    """Runs one commit's demo in a temporary worktree, which it then removes.

    Args:
        repo: the git repository.
        sha: the full commit id.
        out_dir: the demo's --out folder (must not hold other files).
        python: the interpreter with the project's dependencies.
        demo_args: further `kerasll demo` options.

    Returns:
        The path of the demo's results.csv.

    Raises:
        subprocess.CalledProcessError: the worktree or the demo failed.
    """
    tree = Path(tempfile.mkdtemp(prefix=f"demo-{sha[:7]}-")) / "tree"
    _git(repo, "worktree", "add", "--detach", str(tree), sha)
    try:
        project = tomllib.loads((tree / "pyproject.toml").read_text())
        # A package mapped to another folder ("kerasll.export" = "export").
        for package, folder in project["tool"]["setuptools"]["package-dir"].items():
            link = tree / package.replace(".", "/")
            if not link.exists():
                link.symlink_to(tree / folder, target_is_directory=True)
        entry = project["project"]["scripts"]["kerasll"]
        paths = [str(tree), str(tree / "serving"), os.environ.get("PYTHONPATH", "")]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        log = out_dir.parent / f"{out_dir.name}.log"
        with open(log, "w") as stream:
            subprocess.run(
                [python, "-c", RUNNER, os.path.realpath(tree), entry, str(out_dir),
                 *demo_args],
                cwd=tree, env=env, check=True, stdout=stream, stderr=subprocess.STDOUT,
            )
        return out_dir / "results.csv"
    finally:
        _git(repo, "worktree", "remove", "--force", str(tree))
        tree.parent.rmdir()


def compare(old_path, new_path):
    """Compares two results.csv files row by row on their shared columns.

    Args:
        old_path: the earlier results.csv.
        new_path: the later results.csv.

    Returns:
        (equal, max_abs_diff): whether every shared value is the same string
        (and the row counts match), and the largest absolute difference of
        the values both parse as numbers (0 where none differ).
    """
    with open(old_path) as old_file, open(new_path) as new_file:
        old_rows = list(csv.DictReader(old_file))
        new_rows = list(csv.DictReader(new_file))
    if not old_rows or not new_rows:
        return len(old_rows) == len(new_rows), 0.0
    shared = [column for column in old_rows[0] if column in new_rows[0]]
    equal = len(old_rows) == len(new_rows)
    diff = 0.0
    for old, new in zip(old_rows, new_rows):
        for column in shared:
            equal &= old[column] == new[column]
            try:
                diff = max(diff, abs(float(old[column]) - float(new[column])))
            except ValueError:
                pass
    return equal, diff


def main():
    """Parses the arguments, runs the chain and prints the Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=".", help="the git repository")
    parser.add_argument("--commits", nargs="+", required=True, help="in order")
    parser.add_argument("--out", required=True, help="folder for each commit's demo")
    parser.add_argument("--python", default=sys.executable, help="the interpreter")
    parser.add_argument("--demo-args", default="", help="further demo options")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    print("| commit | subject | compared with | shared values equal | max abs diff |")
    print("|---|---|---|---|---|")
    previous = None
    for commit in args.commits:
        sha = _git(args.repo, "rev-parse", f"{commit}^{{commit}}")
        subject = _git(args.repo, "log", "-1", "--format=%s", sha).replace("|", "/")
        results = out / sha / "results.csv"
        if not results.exists():
            try:
                run_demo(args.repo, sha, out / sha, args.python, args.demo_args.split())
            except subprocess.CalledProcessError:
                print(f"| {sha[:7]} | {subject} | - | demo failed, see "
                      f"{out / sha}.log | - |", flush=True)
                continue
        if previous is None:
            row = "- | (first) | -"
        else:
            equal, diff = compare(previous[1], results)
            row = f"{previous[0][:7]} | {'yes' if equal else 'NO'} | {diff:.3g}"
        print(f"| {sha[:7]} | {subject} | {row} |", flush=True)
        previous = (sha, results)


if __name__ == "__main__":
    main()
