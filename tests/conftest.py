"""Test set-up: the TensorFlow backend unless KERAS_BACKEND says otherwise.

On TensorFlow, two logical CPUs so MirroredStrategy can be tested. Other
backends run tests/test_backends_core.py in subprocesses
(tests/test_backends.py), which set KERAS_BACKEND before keras is imported.
"""

import os

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
