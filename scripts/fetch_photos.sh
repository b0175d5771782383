#!/usr/bin/env bash
# Fetch two everyday photos with people into cache/photos/ (EVALUATION ONLY: never train on them,
# never choose a threshold on them): Debian darknet's data/person.jpg (640x424, one adult from
# behind, outdoors) and data/kite.jpg (1352x900, about 8 people on a beach, two large, the rest
# tiny), from `apt-get download darknet` (3 MB; unpacked with dpkg -x, never installed).
# Licence: Debian's darknet package (GPL-3+ / MIT / WTFPL per its copyright file, copied beside
# the photos). Never commit them (cache/ is gitignored). Idempotent: files already present with the
# pinned SHA-256 are kept. Prints the absolute paths of the photos, one per line, on stdout.
# Usage: bash scripts/fetch_photos.sh        (target folder: $MP3D_PHOTOS_DIR or cache/photos)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=fetch_lib.sh
. "$ROOT/scripts/fetch_lib.sh"
DEST="${MP3D_PHOTOS_DIR:-$ROOT/cache/photos}"
SRC_DIR="usr/share/darknet/data"
declare -A FILE_SHA256=(
  [person.jpg]="cdcbab947e46110fc2b77784ac54ddbbab2640f1e44cb5e91fc8984a9793a7d1"
  [kite.jpg]="87410f52f79cc256c3949b48a3548632c07c8e9943468ef8caa6250f6643be8e"
)

if all_present; then
  echo "[fetch_photos] present: $DEST" >&2
else
  TMP="$(mktemp -d)"
  trap 'rm -rf "$TMP"' EXIT
  chmod 777 "$TMP"  # apt-get download as root writes as the _apt user
  echo "[fetch_photos] apt-get download darknet" >&2
  if ! (cd "$TMP" && apt-get download darknet >&2); then
    echo "[fetch_photos] apt-get download failed; running apt-get update and retrying" >&2
    apt-get update >&2
    (cd "$TMP" && apt-get download darknet >&2)
  fi
  dpkg -x "$TMP"/darknet_*.deb "$TMP/x"
  mkdir -p "$DEST"
  for f in "${!FILE_SHA256[@]}"; do
    if [ "$(sha_of "$TMP/x/$SRC_DIR/$f")" != "${FILE_SHA256[$f]}" ]; then
      echo "[fetch_photos] error: $f SHA-256 mismatch" >&2
      exit 1
    fi
    cp "$TMP/x/$SRC_DIR/$f" "$DEST/$f"
  done
  cp "$TMP/x/usr/share/doc/darknet/copyright" "$DEST/darknet.copyright"
  echo "[fetch_photos] wrote $DEST" >&2
fi
for f in kite.jpg person.jpg; do echo "$DEST/$f"; done
