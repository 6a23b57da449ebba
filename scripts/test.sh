#!/usr/bin/env bash
# Runs the whole test suite three times: with current numpy 2.x, with Scipion's pins
# (numpy 1.26.1, scipy 1.10, mrcfile 1.4.3), and inside a Scipion environment (the plugin's
# tests in tests/scipion/test_scipion.py run real Scipion projects there; elsewhere they skip).
# Exits non-zero if any run fails.
set -euo pipefail
source "$(dirname "$0")/venv.sh"
cd "$REPO"

echo "== setting up .venv/current (numpy 2.x)" >&2
make_venv .venv/current "$CURRENT_EXTRAS" "$CURRENT_PINS"
echo "== setting up .venv/scipion-pins (numpy 1.26.1, scipy 1.10, mrcfile 1.4.3)" >&2
make_venv .venv/scipion-pins test,movies,fftw,dask "numpy==1.26.1" "scipy==1.10.0" "mrcfile==1.4.3" "matplotlib==3.8.1" "pandas<3"
echo "== setting up .venv/scipion (scipion-pyworkflow, scipion-em, scipion-em-relion)" >&2
ensure_tkinter
# Scipion pins numpy 1.26.1 and tifffile 2023.9.26 itself; that tifffile cannot decode EER
# with imagecodecs >= 2025.11 (keyword renamed), hence the imagecodecs pin.
make_venv .venv/scipion test,movies,fftw,dask,scipion,scipion-test "pandas<3" "imagecodecs<2025.11"

status=0
for env in current scipion-pins scipion; do
    echo "== tests with .venv/$env: $(.venv/$env/bin/python -c 'import numpy, scipy, mrcfile, pandas; print("numpy", numpy.__version__, "scipy", scipy.__version__, "mrcfile", mrcfile.__version__, "pandas", pandas.__version__)')"
    # numba's compiled kernels (its numpy may differ) and FFTW's wisdom are kept per environment
    NUMBA_CACHE_DIR="$REPO/.venv/$env/numba-cache" SPECTOOLS_CACHE_DIR="$REPO/.venv/$env/spectools-cache" \
        .venv/$env/bin/python -m pytest -q -p no:cacheprovider "$@" tests || status=1
done
exit $status
