"""Prepares what the GPU run carries: a compact CIFAR-10 subset and wheels.

The GPU machine has PyTorch and JAX but neither TensorFlow nor Keras, and no
network; a call carries at most 64 MiB. This writes, into an ignored folder:

- `cifar10-compact.npz`: a random, lossless subset of the shared CIFAR-10
  copy (default 16,384 pool and 5,120 test images, about 44 MiB);
- `wheels/`: Keras and the pure-Python or small dependencies that machine
  lacks (namex, optree), for its Python (3.12, x86-64 manylinux).

Usage, from the repository root:
    python benchmarks/gpu/prepare.py
then, on the GPU machine, `bash benchmarks/gpu/run.sh` with
`benchmarks/gpu/carry` carried.
"""

import argparse
import importlib.metadata
import pathlib
import subprocess
import sys

import compact

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
CARRY = HERE / "carry"
DATA_FILE = "cifar10-compact.npz"
# Missing on the GPU machine (its image lists numpy, h5py, ml-dtypes, rich,
# absl-py and packaging, Keras' other dependencies).
WHEELS = ("keras", "namex", "optree")
PLATFORMS = (
    "manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
    "manylinux2014_x86_64", "manylinux1_x86_64",
)


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=pathlib.Path,
                        default=REPO.parent / "shared" / "data" / "cifar10.npz")
    parser.add_argument("--carry", type=pathlib.Path, default=CARRY)
    parser.add_argument("--train", type=int, default=16384, help="pool images")
    parser.add_argument("--test", type=int, default=5120, help="test images")
    parser.add_argument("--python-version", default="3.12",
                        help="Python of the machine that installs the wheels")
    return parser.parse_args(argv)


def download_wheels(folder, python_version):
    """Downloads the `WHEELS`, at the versions installed here, into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.whl"):
        stale.unlink()
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in WHEELS]
    platforms = [option for name in PLATFORMS for option in ("--platform", name)]
    subprocess.run(
        [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
            "--only-binary=:all:", "--python-version", python_version,
            "--implementation", "cp", *platforms, "--dest", str(folder), *pins,
        ],
        check=True,
    )
    return sorted(folder.glob("*.whl"))


def _megabytes(path):
    return path.stat().st_size / 2**20


def main(argv=None):
    args = _parse(argv)
    args.carry.mkdir(parents=True, exist_ok=True)
    data = args.carry / DATA_FILE
    written = compact.write_subset(args.source, data, args.train, args.test)
    print(
        f"{data}: {written['train']:,} pool + {written['test']:,} test images, "
        f"{_megabytes(data):.1f} MiB ({written['raw_bytes'] / 2**20:.1f} MiB raw)"
    )
    wheels = download_wheels(args.carry / "wheels", args.python_version)
    for wheel in wheels:
        print(f"{wheel.name}: {_megabytes(wheel):.2f} MiB")
    total = _megabytes(data) + sum(_megabytes(wheel) for wheel in wheels)
    print(f"carry total: {total:.1f} MiB (the whole call may carry 64 MiB)")


if __name__ == "__main__":
    main()
