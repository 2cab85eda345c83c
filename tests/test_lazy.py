"""kerasll's packages load their public names on first use (kerasll.lazy)."""

import subprocess
import sys

import pytest

PACKAGES = ["kerasll", "kerasll.active", "kerasll.detection", "kerasll.keypoints"]


def _fresh_python(code):
    """What `code` prints in a fresh interpreter (nothing imported yet)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, check=True).stdout


@pytest.mark.parametrize("package", PACKAGES)
def test_importing_a_package_loads_no_keras_and_names_load_on_use(package):
    code = (
        "import importlib, sys\n"
        f"package = importlib.import_module({package!r})\n"
        "assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules\n"
        "assert set(package.__all__) <= set(dir(package))\n"
        "try:\n"
        "    package.no_such_name\n"
        "except AttributeError as error:\n"
        "    print(error)\n"
    )
    assert _fresh_python(code).strip() == (
        f"module {package!r} has no attribute 'no_such_name'"
    )


def test_data_modules_of_the_task_packages_need_no_keras():
    code = (
        "import sys\n"
        "import kerasll.detection.scenes, kerasll.detection.voc\n"
        "import kerasll.keypoints.figures, kerasll.keypoints.coco\n"
        "from kerasll.keypoints.sizes import SIDE_MULTIPLE\n"
        "print(SIDE_MULTIPLE, 'keras' in sys.modules)\n"
    )
    assert _fresh_python(code).split() == ["32", "False"]


def test_a_public_name_is_the_defining_modules_object():
    from kerasll.keypoints import FIGURE_SKELETON
    from kerasll.keypoints.figures import FIGURE_SKELETON as defined

    assert FIGURE_SKELETON is defined
