"""The `kerasll project` commands that do not train import no training stack.

Each command runs in a fresh interpreter with a meta-path finder that refuses
TensorFlow, Keras, tf2onnx, JAX and PyTorch and records every attempt, even
one a library would swallow: the command must succeed and attempt none.
`train` needs TensorFlow (the control below proves the finder blocks).
"""

import subprocess
import sys

import pytest
from kerasll_serving import PoolScorer
from project_helpers import CLASSES, TRAIN_ARGS, annotate_csv, cli, write_digits
from serving_fixtures import import_blocker

# Runs `kerasll ARGS...` with the training stack blocked; prints the
# attempts on the last line.
RUN = import_blocker(("tensorflow", "keras", "tf2onnx", "jax", "torch")) + r'''
from kerasll_cli import main

sys.argv = ["kerasll", *sys.argv[1:]]
try:
    main()
except SystemExit as exit:
    code = exit.code or 0
except Exception as error:
    code = type(error).__name__
else:
    code = 0
print("exit:", code, "attempts:", *sorted(set(attempts)))
'''

# The commands that do not train, in the order a project runs them. (`select`
# scoring here still imports Keras: kerasll.active.view holds ArrayModelView
# beside the Keras GraphModelView.)
COMMANDS = ("init", "add", "select --random", "tasks", "labels", "status --no-audit",
            "select --picks", "status")


def _blocked(*args):
    """Runs `kerasll project ARGS...`; returns (exit code, blocked imports)."""
    done = subprocess.run([sys.executable, "-c", RUN, "project", *map(str, args)],
                          capture_output=True, text=True, timeout=300)
    last = (done.stdout.strip().splitlines() or [""])[-1].split()
    assert done.returncode == 0 and last[:1] == ["exit:"], done.stderr[-2000:]
    return int(last[1]) if last[1].isdigit() else last[1], last[3:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{command: (exit code, blocked imports)} on one small digits project."""
    root = tmp_path_factory.mktemp("imports")
    truth = write_digits(root / "captures", {"dev1": range(60)})
    project = root / "project"
    done = {
        "init": _blocked("init", project, "--classes", CLASSES),
        "add": _blocked("add", project, root / "captures" / "dev1"),
        "select --random": _blocked("select", project, "--k", "30", "--random"),
        "tasks": _blocked("tasks", project, "--format", "csv"),
    }
    labels = annotate_csv(project / "tasks" / "round-1.csv", root / "labels.csv",
                          truth)
    done["labels"] = _blocked("labels", project, labels)
    done["status --no-audit"] = _blocked("status", project, "--no-audit")
    done["train"] = _blocked("train", project, *TRAIN_ARGS)
    trained = cli("train", project, *TRAIN_ARGS)  # Here, where TensorFlow may load.
    assert trained.exit_code == 0, trained.output
    model = sorted((project / "models").glob("*/model.onnx"))[0]
    picks = root / "dev1.csv"
    PoolScorer(model).score(root / "captures" / "dev1", k=4, audit=10, seed=0,
                            out=picks)
    done["select --picks"] = _blocked("select", project, "--k", "4", "--picks",
                                      f"dev1={picks}")
    done["status"] = _blocked("status", project)
    return done


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_that_does_not_train_imports_no_training_stack(runs, command):
    assert runs[command] == (0, [])


@pytest.mark.slow
def test_the_blocker_stops_train_at_its_tensorflow_import(runs):
    code, attempts = runs["train"]
    assert code != 0
    assert "tensorflow" in attempts


# `import kerasll` loads nothing heavy; its names load on first use, and
# `from kerasll import LossLearner` registers the class for load_model.
LAZY = r'''
import sys

import kerasll
import kerasll.active
import kerasll.project.selection

heavy = {"tensorflow", "keras"} & {name.split(".")[0] for name in sys.modules}
assert not heavy, heavy
assert set(kerasll.__all__) <= set(dir(kerasll))
try:
    kerasll.no_such_name
except AttributeError as error:
    assert "no_such_name" in str(error)
import keras
from kerasll import LossLearner

loaded = keras.models.load_model(sys.argv[1])
print(type(loaded) is LossLearner, sorted(
    name for name in kerasll.__all__ if getattr(kerasll, name) is None))
'''


@pytest.mark.slow
def test_importing_kerasll_is_light_and_its_names_load_on_use(tmp_path):
    import keras

    from kerasll import LossLearner
    from models_for_tests import small_cnn

    learner = LossLearner(small_cnn(), head_units=8)
    learner.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    learner.save(tmp_path / "learner.keras")
    done = subprocess.run([sys.executable, "-c", LAZY, str(tmp_path / "learner.keras")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "[]"]


@pytest.mark.slow
def test_a_detection_project_imports_no_training_stack_until_it_trains(tmp_path):
    from project_helpers import SHAPES, region_export, write_scenes

    truth = write_scenes(tmp_path / "images", 8)
    project = tmp_path / "project"
    assert _blocked("init", project, "--task", "detection", "--classes",
                    ",".join(SHAPES)) == (0, [])
    assert _blocked("add", project, tmp_path / "images") == (0, [])
    assert _blocked("select", project, "--k", "8", "--random") == (0, [])
    assert _blocked("tasks", project) == (0, [])
    export = region_export(project / "tasks" / "round-1.json", tmp_path / "e.json",
                           truth, "detection", None)
    assert _blocked("labels", project, export) == (0, [])
    assert _blocked("status", project, "--no-audit") == (0, [])


@pytest.mark.slow
def test_a_keypoint_project_imports_no_training_stack_after_init_until_it_trains(
        tmp_path):
    from kerasll.keypoints.figures import FIGURE_SKELETON
    from project_helpers import region_export, write_figures

    truth = write_figures(tmp_path / "images", 8)
    project = tmp_path / "project"
    # The schema and the image-size check come from kerasll.keypoints'
    # Keras-free modules (figures, coco, sizes).
    assert _blocked("init", project, "--task", "keypoints") == (0, [])
    assert _blocked("add", project, tmp_path / "images") == (0, [])
    assert _blocked("select", project, "--k", "8", "--random") == (0, [])
    assert _blocked("tasks", project) == (0, [])
    export = region_export(project / "tasks" / "round-1.json", tmp_path / "e.json",
                           truth, "keypoints", FIGURE_SKELETON.names)
    assert _blocked("labels", project, export) == (0, [])
    assert _blocked("status", project, "--no-audit") == (0, [])
