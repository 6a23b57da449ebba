# Shared helper, sourced by demo.sh and test.sh: make_venv DIR [pip requirement...]
# Creates (or reuses) a virtual environment with spectools installed in it.
# Works on a fresh Debian machine: installs python3-venv with apt when venv is missing.
set -euo pipefail

PYTHON="${PYTHON:-python3}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# What .venv/current holds, for demo.sh and test.sh alike: asked for differently,
# each script would rebuild it for the other.
CURRENT_EXTRAS="test,movies,fftw,dask"
CURRENT_PINS="numpy>=2"

ensure_venv_module() {
    if "$PYTHON" -c "import venv, ensurepip" 2>/dev/null; then return 0; fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "Installing python3-venv (the venv module is missing)..." >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    else
        echo "error: $PYTHON has no venv module; install it with: sudo apt-get install python3-venv" >&2
        exit 2
    fi
}

# Scipion imports tkinter (pwem.protocols -> pyworkflow.gui; no window is ever opened).
# A pyenv-built Python usually has it; Debian's python3 needs the python3-tk package.
ensure_tkinter() {
    if "$PYTHON" -c "import tkinter" 2>/dev/null; then return 0; fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "Installing python3-tk (Scipion needs the tkinter module)..." >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-tk >/dev/null
        if "$PYTHON" -c "import tkinter" 2>/dev/null; then return 0; fi
        echo "error: python3-tk is installed but $PYTHON still has no tkinter (python3-tk serves" \
             "Debian's /usr/bin/python3; use that Python, or one built with Tk)" >&2
        exit 2
    else
        echo "error: $PYTHON has no tkinter module, which Scipion needs (no display is used);" \
             "install it with: sudo apt-get install python3-tk" >&2
        exit 2
    fi
}

# make_venv DIR EXTRAS [extra pip requirements...]
make_venv() {
    local dir="$1" extras="$2"; shift 2
    # The stamp records what was asked for, so a changed setup.py or pin list rebuilds the venv.
    local want
    want="$( (cat "$REPO/setup.py"; echo "$extras $*") | cksum)"
    if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$want" ]; then
        return 0
    fi
    ensure_venv_module
    rm -rf "$dir"
    "$PYTHON" -m venv "$dir"
    # Installer chatter goes to a log, shown only when the installation fails.
    if ! { "$dir/bin/python" -m pip install --disable-pip-version-check -U pip &&
           "$dir/bin/python" -m pip install --disable-pip-version-check "$@" -e "$REPO[$extras]"; \
         } > "$dir/install.log" 2>&1; then
        tail -n 30 "$dir/install.log" >&2
        echo "error: installing into $dir failed (full log: $dir/install.log)" >&2
        exit 2
    fi
    echo "$want" > "$dir/.stamp"
}
