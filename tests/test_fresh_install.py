"""A bare machine's path: `make install` into a new `python3 -m venv`, as the
README says, then the packaging tests with that environment's own tools.

This catches an install step that only a developer's environment (or CI)
happens to provide, such as a setuptools new enough for SPDX license
strings. With pip's cache warm it still unpacks TensorFlow and the CPU
PyTorch wheel: 5 minutes on a shared 2-core machine (1.5 minutes of CPU),
so it is marked slow.
"""

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
INSTALL_TIMEOUT_S = 1800
# pip skips byte-compiling the installed packages (TensorFlow's and PyTorch's
# thousands of modules); Python compiles what the tests import as it runs.
ENVIRONMENT = dict(os.environ, PIP_NO_COMPILE="1")


def _run(command, timeout):
    result = subprocess.run([str(part) for part in command], cwd=REPO,
                            capture_output=True, text=True, timeout=timeout,
                            env=ENVIRONMENT)
    assert result.returncode == 0, (
        f"{' '.join(map(str, command))} failed ({result.returncode}):\n"
        f"{(result.stdout + result.stderr)[-3000:]}"
    )
    return result.stdout


@pytest.mark.slow
def test_make_install_in_a_fresh_venv_passes_the_packaging_tests(tmp_path):
    venv = tmp_path / "venv"
    _run(["make", "-s", "install", f"VENV={venv}"],
         INSTALL_TIMEOUT_S)
    assert (venv / ".installed").is_file()
    output = _run([venv / "bin" / "python", "-m", "pytest", "-q", "-p",
                   "no:cacheprovider", "tests/test_packaging.py"], 600)
    assert " passed" in output and "failed" not in output
    _run([venv / "bin" / "kerasll", "--help"], 120)
