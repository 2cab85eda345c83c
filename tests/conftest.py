"""Test set-up: the TensorFlow backend unless KERAS_BACKEND says otherwise.

On TensorFlow, two logical CPUs so MirroredStrategy can be tested. Other
backends run tests/test_backends_core.py in subprocesses
(tests/test_backends.py), which set KERAS_BACKEND before keras is imported.
Tests marked `cifar` are skipped when the CIFAR-10 copy (data_helpers) is
absent.
"""

import os

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if os.environ["KERAS_BACKEND"] == "tensorflow":
    import tensorflow as tf

    _cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        _cpus[0],
        [
            tf.config.LogicalDeviceConfiguration(),
            tf.config.LogicalDeviceConfiguration(),
        ],
    )


def pytest_runtest_setup(item):
    """Skips a test marked `cifar` when the CIFAR-10 copy is absent."""
    if item.get_closest_marker("cifar") is None:
        return
    from data_helpers import CIFAR10, DATA_ENV  # after the backend is set up

    if not CIFAR10.is_file():
        pytest.skip(f"the CIFAR-10 npz is absent ({CIFAR10}; set {DATA_ENV})")


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory):
    """One Label Studio server for every test that talks to one.

    Started once (35-100 s on an idle machine); the projects of
    tests/test_project_labelstudio.py and its regions variant live in
    folders of its document root.

    Yields:
        The server (`test_project_labelstudio._Server`), still starting: the
        first test prepares its project meanwhile.
    """
    from test_project_labelstudio import _label_studio, _Server

    root = tmp_path_factory.mktemp("label-studio")
    server = _Server(_label_studio(), root / "data", root, root / "label-studio.log")
    try:
        yield server
    finally:
        server.stop()
