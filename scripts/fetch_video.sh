#!/usr/bin/env bash
# Fetch the real fixed-camera test video (OpenCV's vtest.avi) into cache/video/vtest.avi.
#
# vtest.avi (768x576, 795 frames, 10 fps, a fixed outdoor camera looking down on ~6 walking people
# about 80 px tall) ships in Debian's opencv-doc package as
# /usr/share/doc/opencv-doc/examples/data/vtest.avi (possibly gzip-compressed as vtest.avi.gz).
# The package is downloaded with `apt-get download` (no install), unpacked with `dpkg -x` in a temp
# folder, and only the video is kept. Licence: the OpenCV licence per Debian's copyright file
# (Files: * -> Apache-2.0 AND BSD-3-Clause); see the README.txt written beside the video. cache/ is
# gitignored: never commit the file. Idempotent: a file already present with the pinned SHA-256 is
# kept. Prints the absolute path of the video on stdout (all logging goes to stderr).
# Usage: bash scripts/fetch_video.sh            (target folder: $MP3D_VIDEO_DIR or cache/video)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${MP3D_VIDEO_DIR:-$ROOT/cache/video}"
NAME="vtest.avi"
SHA256="45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf"  # opencv-doc 4.6.0+dfsg-12
SRC_DIR="usr/share/doc/opencv-doc/examples/data"

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

if [ -f "$DEST/$NAME" ] && [ "$(sha_of "$DEST/$NAME")" = "$SHA256" ]; then
  echo "[fetch_video] present: $DEST/$NAME" >&2
else
  TMP="$(mktemp -d)"
  trap 'rm -rf "$TMP"' EXIT
  # apt-get download as root warns that the _apt user cannot write TMP; let it read and write there.
  chmod 777 "$TMP"
  echo "[fetch_video] apt-get download opencv-doc" >&2
  if ! (cd "$TMP" && apt-get download opencv-doc >&2); then
    echo "[fetch_video] apt-get download failed; running apt-get update and retrying" >&2
    apt-get update >&2
    (cd "$TMP" && apt-get download opencv-doc >&2)
  fi
  DEB="$(ls "$TMP"/opencv-doc_*.deb)"
  echo "[fetch_video] unpacking $(basename "$DEB")" >&2
  dpkg -x "$DEB" "$TMP/x"
  if [ -f "$TMP/x/$SRC_DIR/$NAME" ]; then
    cp "$TMP/x/$SRC_DIR/$NAME" "$TMP/$NAME"
  elif [ -f "$TMP/x/$SRC_DIR/$NAME.gz" ]; then
    gzip -dc "$TMP/x/$SRC_DIR/$NAME.gz" > "$TMP/$NAME"
  else
    echo "[fetch_video] error: $SRC_DIR/$NAME(.gz) not in $(basename "$DEB")" >&2
    exit 1
  fi
  GOT="$(sha_of "$TMP/$NAME")"
  if [ "$GOT" != "$SHA256" ]; then
    # A different opencv-doc release may carry a re-encoded file: refuse it rather than guess.
    echo "[fetch_video] error: $NAME SHA-256 $GOT differs from the pinned $SHA256" >&2
    echo "[fetch_video] (package $(basename "$DEB")); update SHA256 in this script if intended" >&2
    exit 1
  fi
  mkdir -p "$DEST"
  mv "$TMP/$NAME" "$DEST/$NAME.part"
  mv "$DEST/$NAME.part" "$DEST/$NAME"
  cp "$TMP/x/usr/share/doc/opencv-doc/copyright" "$DEST/opencv-doc.copyright"
  cat > "$DEST/README.txt" <<EOF
vtest.avi: OpenCV's sample video (768x576, 795 frames, 10 fps, a fixed outdoor camera with walking
people), taken from Debian's opencv-doc package ($(basename "$DEB")),
/$SRC_DIR/$NAME.
Licence: the OpenCV licence as stated by Debian's copyright file for the package (copied beside
this file as opencv-doc.copyright; "Files: *" -> Apache-2.0 AND BSD-3-Clause, Copyright Intel
Corporation, Willow Garage, NVIDIA, AMD, OpenCV Foundation, Itseez, Xperience AI and contributors).
No 3D ground truth, no calibration. Do not commit; refetch with: bash scripts/fetch_video.sh
EOF
  echo "[fetch_video] wrote $DEST/$NAME" >&2
fi
echo "$DEST/$NAME"
