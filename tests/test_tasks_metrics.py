"""The metrics table that reports read is the one the task classes use."""

import subprocess
import sys

import pytest

from kerasll.tasks import KINDS, task_class
from kerasll.tasks.metrics import METRICS


@pytest.mark.parametrize("kind", KINDS)
def test_each_task_names_the_metrics_of_the_table(kind):
    metric, secondary = METRICS[kind]
    cls = task_class(kind)
    assert cls.metric() == metric
    assert tuple(cls.secondary_metrics) == secondary


def test_the_table_loads_without_keras():
    code = (
        "import sys\n"
        "import kerasll.tasks.metrics\n"
        "print('keras' in sys.modules, 'tensorflow' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                            text=True, check=True)
    assert result.stdout.split() == ["False", "False"]
