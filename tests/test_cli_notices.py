"""TensorFlow's C++ start-up notices stay off the terminal (kerasll_cli.notices).

A fake `tensorflow` package that writes notices to file descriptor 2 as the
C++ side does pins which lines each TF_CPP_MIN_LOG_LEVEL keeps; the real
`kerasll simulate --help` and a tiny run print none, and a user's own level 0
still shows them.
"""

import os
import subprocess
import sys

import pytest

from kerasll_cli.notices import kept_lines, notice_level

BANNER = (b"WARNING: All log messages before absl::InitializeLog() is called are "
          b"written to STDERR\n")
INFO = (b"I0000 00:00:1796609025.356164   30572 cudart_stub.cc:31] Could not find "
        b"cuda drivers on your machine, GPU will not be used.\n")
ERROR = (b"E0000 00:00:1796609045.460411   30572 cuda_platform.cc:52] failed call "
         b"to cuInit: INTERNAL: CUDA error\n")
WARNING = b"W1207 02:13:04.123456 30572 op_kernel.cc:1857] a warning\n"
PYTHON = b"a line Python wrote\n"


def test_each_absl_line_has_its_severity_and_other_lines_none():
    assert [notice_level(line) for line in (INFO, WARNING, ERROR, PYTHON, BANNER)] == [
        0, 1, 2, None, None]


@pytest.mark.parametrize(
    "keep, expected",
    [
        (4, [PYTHON, PYTHON]),
        (3, [PYTHON, PYTHON]),
        (2, [PYTHON, BANNER, ERROR, PYTHON]),
        (1, [PYTHON, BANNER, WARNING, ERROR, PYTHON]),
        (0, [BANNER, INFO, PYTHON, WARNING, ERROR, PYTHON]),
    ],
)
def test_notices_below_the_level_are_dropped_and_the_banner_goes_with_them(
    keep, expected
):
    lines = [BANNER, INFO, PYTHON, WARNING, ERROR, PYTHON]
    assert kept_lines(lines, keep) == expected


# A stand-in for TensorFlow: notices written to file descriptor 2 while it
# loads and while it looks for devices, a Python line between them.
FAKE_TENSORFLOW = f'''
import os
import sys

os.write(2, {BANNER!r} + {INFO!r})
print({PYTHON.decode().strip()!r}, file=sys.stderr)
if os.environ.get("FAKE_IMPORT_FAILS"):
    raise ImportError("fake tensorflow failed")


class config:
    @staticmethod
    def list_physical_devices():
        os.write(2, {ERROR!r})
        return []
'''

START = r'''
import logging
import os

from kerasll_cli.notices import start_tensorflow

start_tensorflow()
print(os.environ["TF_CPP_MIN_LOG_LEVEL"], logging.getLogger("tensorflow").level)
'''


def _start(tmp_path, **env):
    (tmp_path / "tensorflow").mkdir(exist_ok=True)
    (tmp_path / "tensorflow" / "__init__.py").write_text(FAKE_TENSORFLOW)
    environ = {name: value for name, value in os.environ.items()
               if name != "TF_CPP_MIN_LOG_LEVEL"}
    environ.update(env, PYTHONPATH=os.pathsep.join(
        [str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-c", START], capture_output=True,
                          text=True, timeout=60, env=environ)


@pytest.mark.slow
def test_unset_level_drops_every_start_up_notice_and_quiets_the_python_logger(
    tmp_path
):
    done = _start(tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == PYTHON.decode()
    assert done.stdout.split() == ["2", "40"]  # TF_CPP_MIN_LOG_LEVEL=2, ERROR


@pytest.mark.slow
@pytest.mark.parametrize("level, shown", [("0", [BANNER, INFO, PYTHON, ERROR]),
                                          ("2", [PYTHON, BANNER, ERROR]),
                                          ("3", [PYTHON])])
def test_a_users_own_level_is_kept_and_applied(tmp_path, level, shown):
    done = _start(tmp_path, TF_CPP_MIN_LOG_LEVEL=level)
    assert done.returncode == 0, done.stderr
    assert done.stderr == b"".join(shown).decode()
    assert done.stdout.split() == [level, "0"]  # The Python logger left alone.


@pytest.mark.slow
def test_a_failed_import_shows_everything_it_printed(tmp_path):
    done = _start(tmp_path, FAKE_IMPORT_FAILS="1")
    assert done.returncode == 1
    assert done.stderr.startswith((BANNER + INFO + PYTHON).decode())
    assert "ImportError: fake tensorflow failed" in done.stderr


def _kerasll(*args, **env):
    environ = {name: value for name, value in os.environ.items()
               if name != "TF_CPP_MIN_LOG_LEVEL"}
    environ.update(env)
    command = [sys.executable, "-c", "from kerasll_cli import main; main()", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600,
                          env=environ)


def _notices(stderr):
    return [line for line in stderr.splitlines()
            if notice_level(line.encode()) is not None
            or "absl::InitializeLog" in line or "WARNING:tensorflow" in line]


@pytest.mark.slow
def test_simulate_help_prints_no_notice_unless_the_user_asks(tmp_path):
    quiet = _kerasll("simulate", "--help")
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert "--strategies" in quiet.stdout
    assert quiet.stderr == ""
    loud = _kerasll("simulate", "--help", TF_CPP_MIN_LOG_LEVEL="0")
    assert loud.returncode == 0, loud.stderr[-2000:]
    assert _notices(loud.stderr)  # TensorFlow's own notices, as the user asked.


@pytest.mark.slow
def test_a_tiny_simulation_prints_only_its_progress(tmp_path):
    done = _kerasll("simulate", "--dataset", "digits", "--strategies",
                    "learning_loss_safe", "--initial", "20", "--budget", "20",
                    "--cycles", "2", "--epochs", "1", "--trials", "1",
                    "--out", tmp_path / "run")
    assert done.returncode == 0, done.stderr[-2000:]
    assert _notices(done.stderr) == []
    assert done.stderr.splitlines() == [
        "learning_loss_safe trial 0 cycle 0 (20 labels)",
        "learning_loss_safe trial 0 cycle 1 (40 labels)",
    ]


@pytest.mark.slow
def test_an_export_prints_only_its_report(tmp_path):
    import keras

    from kerasll import LossLearner
    from models_for_tests import small_cnn

    learner = LossLearner(small_cnn(), head_units=8)
    learner.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    learner.save(tmp_path / "learner.keras")
    done = _kerasll("export", tmp_path / "learner.keras", "--out",
                    tmp_path / "learner.onnx")
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "learner.onnx").exists()
    assert _notices(done.stderr) == []
