#!/usr/bin/env bash
# Build the songspace training corpus from the music shipped in a fixed set of
# Debian game-data packages.
#
# Usage: scripts/fetch-training-corpus.sh DEST
#
#   DEST/debs/          the .deb files (fetched with `apt-get download` unless
#                       a PKG_*.deb is already there)
#   DEST/unpacked/PKG/  each package unpacked with `dpkg-deb -x` (never installed)
#   DEST/music/PKG/     relative symlinks to the selected music tracks, one flat,
#                       unique file name per track
#   DEST/music/MANIFEST.tsv
#                       package, source path (relative to DEST/unpacked/PKG),
#                       duration in seconds, size in bytes, sha256, link name
#
# Needs: apt-get, dpkg-deb, unzip, sha256sum, and either ffprobe or a Python
# with PyAV (set PYTHON, default python3), e.g.
#   PYTHON=.venv/bin/python scripts/fetch-training-corpus.sh /work/corpus
#
# Re-running is cheap: present .debs are not downloaded again, unpacked trees
# are not unpacked again, and DEST/music is rebuilt from scratch.
#
# Held-out test sources (wesnoth, nexuiz, hyperrogue, drascula,
# extremetuxracer, fretsonfire) must never be added to PACKAGES.
set -euo pipefail

if [ $# -ne 1 ]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d'
  exit 2
fi

PACKAGES=(
  supertuxkart-data hedgewars-data supertux-data widelands-data
  megaglest-data openclonk-data 0ad-data xmoto-data neverball-data
  frozen-bubble-data openarena-data
)
PYTHON=${PYTHON:-python3}
MIN_SECONDS=30   # shorter "music" files are jingles/stingers (win, lose, ...)

if ! command -v ffprobe >/dev/null && ! "$PYTHON" -c 'import av' 2>/dev/null; then
  echo "error: need ffprobe, or PYTHON (now '$PYTHON') with PyAV installed" >&2
  exit 1
fi

mkdir -p "$1/debs" "$1/unpacked"
DEST=$(cd "$1" && pwd)

# --- 1. download ------------------------------------------------------------
for pkg in "${PACKAGES[@]}"; do
  if ! compgen -G "$DEST/debs/${pkg}_*.deb" >/dev/null; then
    (cd "$DEST/debs" && apt-get download "$pkg")
  fi
done

# --- 2. unpack --------------------------------------------------------------
for pkg in "${PACKAGES[@]}"; do
  out=$DEST/unpacked/$pkg
  [ -d "$out" ] && continue
  deb=$(ls "$DEST/debs/${pkg}"_*.deb | sort -V | tail -n 1)
  echo "unpacking $deb" >&2
  rm -rf "$out.tmp"
  dpkg-deb -x "$deb" "$out.tmp"
  mv "$out.tmp" "$out"
done

# Some games keep their data in zip archives (0ad: mods/public/public.zip,
# OpenArena: *.pk3). Extract only members below a music directory, next to the
# archive as ARCHIVE.d/ (unzip exit 11 = "no matching member", which is fine).
# OpenClonk's packed *.ocf/*.ocd/*.ocg files are C4Group archives (a custom
# container); its music is in Music.ocg, which Debian ships as a plain
# directory of .ogg files, and the packed groups only hold short sound
# effects, so they are left alone.
for pkg in "${PACKAGES[@]}"; do
  find "$DEST/unpacked/$pkg" -type f \( -name '*.zip' -o -name '*.pk3' \) |
  while read -r archive; do
    unzip -qq -o -C "$archive" '*music/*' -d "$archive.d" 2>/dev/null || [ $? -eq 11 ]
  done
done

# --- 3. select --------------------------------------------------------------
# Candidates are audio files FFmpeg/PyAV decodes (ogg, opus, mp3, flac, wav;
# tracker modules are not used) that the game itself treats as music:
#   * default: a path component contains "music" (case-insensitive):
#       0ad audio/music, hedgewars Data/Music, supertux music/, widelands
#       data/music, megaglest data/core/menu/music and factions/*/music,
#       xmoto Textures/Musics, openclonk Music.ocg;
#   * supertuxkart: the files named by file="..." in its *.music descriptors.
#     This also picks up tracks that live in a track's own folder and leaves
#     out the sped-up "fast-filename" variants of the same recordings;
#   * frozen-bubble: snd/*zik*.ogg ("zik" = music); the rest of snd/ is sfx.
# Symlinks are ignored (in these packages they only point at fonts, licences
# or other files of the same tree). Sound effects and voices live elsewhere
# (sounds/, sfx/, voices/, units/*/sounds), and music-folder files shorter than
# MIN_SECONDS are dropped as jingles.
candidates() {  # $1 = package; prints absolute paths
  local root=$DEST/unpacked/$1
  case $1 in
    supertuxkart-data)
      find "$root" -type f -name '*.music' | while read -r desc; do
        grep -o '\bfile[[:space:]]*=[[:space:]]*"[^"]*"' "$desc" | cut -d'"' -f2 |
          while read -r f; do echo "$(dirname "$desc")/$f"; done
      done ;;
    frozen-bubble-data)
      find "$root" -type f -path '*/snd/*zik*.ogg' ;;
    *)
      find "$root" -type f -ipath "$root/*music*/*" \
        \( -iname '*.ogg' -o -iname '*.opus' -o -iname '*.mp3' \
           -o -iname '*.flac' -o -iname '*.wav' \) ;;
  esac | sort -u
}

# Reads paths on stdin, prints "SECONDS<TAB>PATH" (-1 if undecodable).
durations() {
  if command -v ffprobe >/dev/null; then
    while read -r f; do
      d=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$f" || true)
      printf '%s\t%s\n' "${d:--1}" "$f"
    done
  else
    "$PYTHON" -c '
import sys, av
for path in sys.stdin.read().splitlines():
    try:
        with av.open(path) as c:
            if c.duration:
                secs = c.duration / av.time_base
            else:  # no header duration: add up the packet durations
                s = c.streams.audio[0]
                secs = sum(p.duration or 0 for p in c.demux(s)) * s.time_base
    except Exception as e:
        print(f"cannot decode {path}: {e}", file=sys.stderr)
        secs = -1
    print(f"{float(secs):.2f}\t{path}")
'
  fi
}

rm -rf "$DEST/music"
mkdir -p "$DEST/music"
manifest=$DEST/music/MANIFEST.tsv
printf 'package\tsource_path\tduration_s\tsize_bytes\tsha256\tfile\n' >"$manifest"
declare -A seen   # sha256 -> first package/path, to drop duplicates

for pkg in "${PACKAGES[@]}"; do
  root=$DEST/unpacked/$pkg
  mkdir -p "$DEST/music/$pkg"
  n=0
  while IFS=$'\t' read -r secs path; do
    rel=${path#"$root"/}
    if [ ! -f "$path" ]; then
      echo "skip (missing): $pkg $rel" >&2; continue
    fi
    if awk -v s="$secs" -v m="$MIN_SECONDS" 'BEGIN { exit !(s < m) }'; then
      echo "skip (${secs}s < ${MIN_SECONDS}s): $pkg $rel" >&2; continue
    fi
    sum=$(sha256sum "$path" | cut -d' ' -f1)
    if [ -n "${seen[$sum]:-}" ]; then
      echo "skip (duplicate of ${seen[$sum]}): $pkg $rel" >&2; continue
    fi
    seen[$sum]="$pkg $rel"
    # Flat name: path below usr/share/games/, "/" -> "__", odd chars -> "_".
    name=$(printf '%s' "${rel#usr/share/games/}" | sed 's|/|__|g; s|[^A-Za-z0-9._-]|_|g')
    ln -sr "$path" "$DEST/music/$pkg/$name"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$pkg" "$rel" "$secs" \
      "$(stat -c %s "$path")" "$sum" "$pkg/$name" >>"$manifest"
    n=$((n + 1))
  done < <(candidates "$pkg" | durations)
  [ "$n" -gt 0 ] || echo "note: no music selected from $pkg" >&2
done

# --- summary ----------------------------------------------------------------
awk -F'\t' 'NR > 1 { n[$1]++; s[$1] += $3; N++; S += $3 }
  END { for (p in n) printf "%-20s %4d tracks %7.1f min\n", p, n[p], s[p] / 60 | "sort"
        close("sort")
        printf "%-20s %4d tracks %7.1f min\n", "TOTAL", N, S / 60 }' "$manifest"
