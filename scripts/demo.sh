#!/usr/bin/env bash
# Runs spectools on a built-in example and writes the results to ./demo-output.
set -euo pipefail
source "$(dirname "$0")/venv.sh"
cd "$REPO"
make_venv .venv/current "$CURRENT_EXTRAS" "$CURRENT_PINS"
.venv/current/bin/spectools demo -o demo-output "$@"
