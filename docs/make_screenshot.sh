#!/usr/bin/env bash
# Regenerate docs/demo-report.png: run the demo, render its VLM report in headless Chromium.
# Usage: docs/make_screenshot.sh [height-in-px]   (needs Debian's chromium: apt-get install chromium)
set -euo pipefail
cd "$(dirname "$0")/.."
height="${1:-2400}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
.venv/bin/scratchcheck demo --out "$work/demo" >/dev/null
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync --hide-scrollbars \
  --user-data-dir="$work/profile" --screenshot="$work/shot.png" --window-size="1280,$height" \
  "file://$work/demo/reports/vlm.html" 2>/dev/null
mv "$work/shot.png" docs/demo-report.png
echo "written: docs/demo-report.png (from $work/demo/reports/vlm.html)"
