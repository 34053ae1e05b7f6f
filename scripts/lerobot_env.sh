#!/usr/bin/env bash
# Build (once) a virtual environment in which LeRobot 0.4.4's own LeRobotDataset runs, to check
# that our LeRobot v3.0 exports load in the real client (tests/interop/test_lerobot.py, marker
# `interop`). Prints the interpreter to use on its last line. Safe to run again: a finished venv
# whose stamp matches is reused as it is.
#
# LeRobot 0.4.4 is the newest release that runs on Python 3.11 (0.5+ needs 3.12). Its wheel pins
# torch<2.11 and a torch from PyPI brings gigabytes of CUDA, so the venv reuses the project's
# .venv (torch 2.13 CPU, numpy, pyarrow, av, pillow) through a .pth file and installs only what
# LeRobotDataset imports, LeRobot itself without its pins (--no-deps):
#   lerobot==0.4.4; torchvision 0.(N+15) for .venv's torch 2.N; torchcodec 0.N, the decoder
#   LeRobot picks by default (torchvision 0.28 has no video reader any more, so LeRobot's "pyav"
#   backend cannot work with it); datasets 4, huggingface-hub<0.36 (LeRobot's pin; it shadows
#   .venv's newer one in this venv only), jsonlines, draccus, accelerate, deepdiff, termcolor.
# torchcodec needs FFmpeg's shared libraries: bin/lerobot-python (the interpreter to use) points
# the loader at the FFmpeg 8 that .venv's PyAV wheel ships, so no system FFmpeg is needed.
# PyPI's torchvision is built for CUDA torch; tests/interop/lerobot_client.py explains the one
# consequence for the CPU torch. About 30 MB of downloads.
# Override the location with LEROBOT_VENV=... .
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BASE_VENV="${ROBOT_RL_VENV:-$ROOT/.venv}"
VENV="${LEROBOT_VENV:-$HOME/.cache/robot_rl/lerobot-venv}"
LEROBOT_VERSION=0.4.4
log() { printf '[lerobot-env] %s\n' "$*" >&2; }

[ -x "$BASE_VENV/bin/python" ] || { log "no project venv at $BASE_VENV; run scripts/setup.sh first"; exit 1; }
BASE_PY="$BASE_VENV/bin/python"
BASE_SITE=$("$BASE_PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
TORCH=$("$BASE_PY" -c 'import torch; print(torch.__version__.split("+")[0])')
MINOR=$(echo "$TORCH" | cut -d. -f2)
TORCHVISION="torchvision==0.$((MINOR + 15)).*"
TORCHCODEC="torchcodec==0.$MINOR.*"
STAMP_TEXT="lerobot=$LEROBOT_VERSION torch=$TORCH base=$BASE_SITE"
STAMP="$VENV/.robot_rl_lerobot"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$STAMP_TEXT" ] && [ -x "$VENV/bin/lerobot-python" ]; then
  echo "$VENV/bin/lerobot-python"; exit 0
fi

log "building $VENV (LeRobot $LEROBOT_VERSION over $BASE_VENV, torch $TORCH)"
rm -rf "$VENV"
BASE_EXE=$("$BASE_PY" -c 'import sys; print(sys._base_executable)')
"$BASE_EXE" -m venv "$VENV"
SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# appended after the venv's own site-packages: what is installed here wins over .venv
echo "$BASE_SITE" > "$SITE/zz_robot_rl_base.pth"
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
"${PIP[@]}" --no-deps "lerobot==$LEROBOT_VERSION" "$TORCHVISION" "$TORCHCODEC"
"${PIP[@]}" "datasets>=4.0,<5" "huggingface-hub>=0.34.2,<0.36" "jsonlines>=4" "draccus==0.10.0" \
  "accelerate>=1.10,<2" "deepdiff>=7,<9" "termcolor>=2.4"

# FFmpeg for torchcodec: PyAV's bundled libraries under the names torchcodec asks the loader for
AVLIBS=$("$BASE_PY" -c 'import av, pathlib; print(pathlib.Path(av.__file__).parent.parent / "av.libs")')
mkdir -p "$VENV/ffmpeg"
for lib in "$AVLIBS"/libav*.so.* "$AVLIBS"/libsw*.so.*; do
  name=$(basename "$lib")  # e.g. libavcodec-5e6b81c2.so.62.28.102 -> libavcodec.so.62
  major=$(echo "$name" | sed -E 's/.*\.so\.([0-9]+).*/\1/')
  ln -sf "$lib" "$VENV/ffmpeg/${name%%-*}.so.$major"
done
{
  echo '#!/usr/bin/env bash'
  echo "export LD_LIBRARY_PATH=\"$VENV/ffmpeg:$AVLIBS\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\""
  echo 'export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1'
  echo "exec \"$VENV/bin/python\" \"\$@\""
} > "$VENV/bin/lerobot-python"
chmod +x "$VENV/bin/lerobot-python"
"$VENV/bin/lerobot-python" -c 'import torchcodec.decoders, lerobot' || { log "the LeRobot venv does not import"; exit 1; }
echo "$STAMP_TEXT" > "$STAMP"
log "ready"
echo "$VENV/bin/lerobot-python"
