#!/usr/bin/env bash
# Set up and run the tests: scripts/test.sh [--quick] [pytest args]
# --quick skips the tests marked slow (each over ~20 s: quality on ../shared/data, training, the
# map, kill -9 and fuzz runs); CI runs everything.
# Installs what the tests use when missing: the Python packages into .venv (the `test` extra, and
# the `ray` extra: tests/test_ray.py runs a real local Ray cluster), and Debian's
# Chromium (the browser tests drive the system binary; no browser is ever downloaded) and mpd
# (the MPD tests start a real one on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test,ray
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v mpd >/dev/null || [ -x /usr/bin/mpd ] || missing+=(mpd)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
quick=()
if [ "${1:-}" = "--quick" ]; then
  shift
  quick=(-m "not slow")
fi
exec .venv/bin/python -m pytest -q "${quick[@]}" "$@"
