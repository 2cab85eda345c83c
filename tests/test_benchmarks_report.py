"""benchmarks/RESULTS.md is what `benchmarks/run.py --report-only` renders.

Every section renders from its committed folder `benchmarks/runs/<section>/`
(figures.json, the runs' states and results.csv), so a hand edit of
RESULTS.md, or a state committed without re-rendering, fails here. Nothing
is run or trained: rendering reads files only.
"""

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_results_md_is_the_rendered_report(tmp_path):
    out = tmp_path / "RESULTS.md"
    subprocess.run(
        [sys.executable, str(BENCHMARKS / "run.py"), "--report-only",
         "--out", str(out)],
        check=True, capture_output=True, text=True,
    )
    assert out.read_text() == (BENCHMARKS / "RESULTS.md").read_text(), (
        "benchmarks/RESULTS.md differs from what the committed benchmarks/runs/ "
        "render: run `python benchmarks/run.py --report-only` and commit the result "
        "(edit a section's Markdown in its code, not in RESULTS.md)"
    )


def test_rendering_imports_no_tensorflow():
    """Each section's module is imported to render it; TensorFlow (and onnx)
    only inside the run functions, so rendering stays light."""
    script = (
        "import runpy, sys\n"
        f"runpy.run_path({str(BENCHMARKS / 'run.py')!r})['render']()\n"
        "heavy = {'tensorflow', 'keras', 'onnx', 'onnxruntime'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], check=True,
                          capture_output=True, text=True)
    assert done.stdout.strip() == "[]"
