#!/usr/bin/env bash
# Shared by the fetch_*.sh scripts (sourced, not run): content checks of fetched files.
# all_present needs DEST (folder) and FILE_SHA256 (associative array: relative path -> SHA-256).

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# True when every pinned file is in DEST with its pinned SHA-256.
all_present() {
  local f
  for f in "${!FILE_SHA256[@]}"; do
    [ -f "$DEST/$f" ] && [ "$(sha_of "$DEST/$f")" = "${FILE_SHA256[$f]}" ] || return 1
  done
}
