#!/usr/bin/env bash
# The main job, from a fresh clone: set up, index a music folder, print tracks similar to one of it.
#   scripts/quickstart.sh [MUSIC_FOLDER]
# With no folder: ../shared/data/ost-dev when present, else a small synthesized demo library.
# The library lives in the per-user data directory unless SONGSPACE_LIBRARY says otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
folder=${1:-}
if [ -z "$folder" ]; then
  if [ -d ../shared/data/ost-dev ]; then
    folder=../shared/data/ost-dev
  else
    folder=.demo-music
    [ -d "$folder" ] || .venv/bin/songspace demo-library "$folder"
  fi
fi
# Exit code 1 only means some files could not be analysed; they are listed, and the rest is indexed.
.venv/bin/songspace index "$folder" || [ $? -eq 1 ]
first=$(.venv/bin/python -c 'import sys; from songspace.scan import scan; print(scan(sys.argv[1:])[0][0])' "$folder")
.venv/bin/songspace similar "$first" -k 10
