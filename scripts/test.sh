#!/usr/bin/env bash
# Runs the whole test suite twice: with current numpy 2.x, and with Scipion's pins
# (numpy 1.26.1, scipy 1.10, mrcfile 1.4.3). Exits non-zero if either run fails.
set -euo pipefail
source "$(dirname "$0")/venv.sh"
cd "$REPO"

echo "== setting up .venv/current (numpy 2.x)" >&2
make_venv .venv/current test,movies "numpy>=2"
echo "== setting up .venv/scipion-pins (numpy 1.26.1, scipy 1.10, mrcfile 1.4.3)" >&2
make_venv .venv/scipion-pins test,movies "numpy==1.26.1" "scipy==1.10.0" "mrcfile==1.4.3" "matplotlib==3.8.1" "pandas<3"

status=0
for env in current scipion-pins; do
    echo "== tests with .venv/$env: $(.venv/$env/bin/python -c 'import numpy, scipy, mrcfile, pandas; print("numpy", numpy.__version__, "scipy", scipy.__version__, "mrcfile", mrcfile.__version__, "pandas", pandas.__version__)')"
    .venv/$env/bin/python -m pytest -q -p no:cacheprovider "$@" tests || status=1
done
exit $status
