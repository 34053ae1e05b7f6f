#!/usr/bin/env bash
# Take a fresh Debian/Ubuntu x86-64 machine to a working robot_rl: system libraries for
# headless rendering, a virtual environment in .venv, PyTorch, and the project with its
# ROS 2 and dev extras. Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
log() { printf '[setup] %s\n' "$*"; }

install_system_libs() {
  local missing=()
  for pkg in libegl1 libgl1 libosmesa6; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return
  log "installing system libraries for headless rendering: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

pick_python() {
  for candidate in python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] <= (3, 12)))' 2>/dev/null; then
      echo "$candidate"; return
    fi
  done
  echo "robot_rl needs Python 3.11 or 3.12 (zarr v3 needs 3.11+); none was found on PATH." >&2
  exit 1
}

make_venv() {
  [ -x "$VENV/bin/python" ] && return
  local python; python=$(pick_python)
  # A torch that is already installed system-wide is kept: the venv sees it.
  if "$python" -c 'import torch' >/dev/null 2>&1; then
    log "reusing the installed torch ($("$python" -c 'import torch; print(torch.__version__)'))"
    "$python" -m venv --system-site-packages "$VENV"
  else
    "$python" -m venv "$VENV"
  fi
  "$VENV/bin/python" -m pip install -q --upgrade pip
}

install_python_deps() {
  local stamp="$VENV/.robot_rl_installed"
  local digest; digest=$(sha256sum pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
  # The stamp alone is not trusted: the packages must also import from outside the checkout.
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ] &&
     (cd / && "$VENV/bin/python" -c 'import robot_rl, sim, hardware, reward_models' >/dev/null 2>&1); then
    return
  fi
  if ! "$VENV/bin/python" -c 'import torch' >/dev/null 2>&1; then
    log "installing torch==2.13.0"
    "$VENV/bin/python" -m pip install -q "torch==2.13.0"
  fi
  log "installing robot_rl with its ros, dev, interop and ray extras"
  "$VENV/bin/python" -m pip install -q -e ".[ros,dev,interop,ray]"
  echo "$digest" > "$stamp"
}

install_system_libs
make_venv
install_python_deps
log "ready: $VENV/bin/robot-rl"
