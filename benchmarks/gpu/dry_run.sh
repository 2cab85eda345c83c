#!/usr/bin/env bash
# CPU dry run of every piece of the GPU run, with a tiny setting:
#   bash benchmarks/gpu/dry_run.sh
# prepare.py writes a small compact subset and wheels for this machine's
# Python; run.sh installs them and runs the "tiny" preset of regime.py with
# TensorFlow blocked from import, as it is absent on the GPU machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
DRY=${DRY:-/tmp/kerasll-gpu-dry}
PYTHON=${PYTHON:-$PWD/.venv/bin/python}
rm -rf "$DRY" && mkdir -p "$DRY/block"
version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
"$PYTHON" benchmarks/gpu/prepare.py --carry "$DRY/carry" --train 1024 --test 512 \
    --python-version "$version"
cat > "$DRY/block/sitecustomize.py" <<'PY'
import sys


class _NoTensorFlow:
    """Fails every TensorFlow import, as on the GPU machine."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow":
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)")
        return None


sys.meta_path.insert(0, _NoTensorFlow())
PY
PYTHON="$PYTHON" CARRY="$DRY/carry" SITE="$DRY/site" OUT="$DRY/out" \
    PYTHONPATH="$DRY/block" bash benchmarks/gpu/run.sh --preset tiny --work "$DRY/work"
