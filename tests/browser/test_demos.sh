#!/usr/bin/env bash
# Browser test of every demo's pages: each demo of `dtsim demo` runs on a small share of its
# data (the same keys, strategies and sweeps, fewer samples and one epoch), then headless
# Chromium (networking off) opens its report.html, or its compare.html and its first point's
# report.html (every point's page is the same template, which test_report.sh covers with its
# variants). Every page must load without a page or console error, show the demo's narrative
# (its [teaching] table) and draw its charts.
# Usage: test_demos.sh DTSIM_EXE OUTPUT_DIR
set -euo pipefail
exe="$1"
out="$2"
rm -rf "$out"
mkdir -p "$out"
source "$(dirname "$0")/common.sh"

# Loads one page; it must have drawn charts with no error. Prints its <body> tag.
pages=0
check_page() {
  local page="$1" what="$2"
  local dom="$out/dom-$pages.html" log="$out/chromium-$pages.log"
  "$browser" "${flags[@]}" --user-data-dir="$out/profile" --dump-dom "file://$page" >"$dom" 2>"$log" ||
    fail "$what: chromium could not load $page (see $log)"
  local body
  body=$(grep -o '<body[^>]*>' "$dom" || true)
  echo "$body" | grep -q 'data-errors=""' || fail "$what: page errors: $body"
  local charts
  charts=$(echo "$body" | sed -n 's/.*data-charts="\([0-9]*\)".*/\1/p')
  [ -n "$charts" ] && [ "$charts" -gt 0 ] || fail "$what: no chart drawn ($body)"
  if grep -E "Uncaught|CONSOLE.*(Error|error)" "$log" >/dev/null; then
    fail "$what: console errors: $(grep -E 'Uncaught|CONSOLE' "$log" | head -3)"
  fi
  pages=$((pages + 1))
  LAST_DOM="$dom"
}

# The demos, as `dtsim demo` lists them ("  lesson N   NAME   title").
names=$("$exe" demo | awk '$1 == "lesson" { print $3 }')
[ "$(echo "$names" | wc -w)" -ge 9 ] || fail "expected at least 9 demos, got: $names"
small=(--set data.train_samples=1200 --set data.test_samples=400 --set train.epochs=1
       --set train.eval_every=2)
for name in $names; do
  dir="$out/$name"
  # (Exit 1 is a demo that shows an unhealthy run on purpose; 2 and 3 are errors.)
  code=0
  "$exe" demo "$name" -o "$dir" -q "${small[@]}" >"$out/$name.txt" 2>&1 || code=$?
  [ "$code" -le 1 ] || fail "demo $name exited $code: $(tail -3 "$out/$name.txt")"
  if [ -f "$dir/compare.html" ]; then
    check_page "$dir/compare.html" "demo $name compare.html"
    grep -q '<section id="teaching">' "$LAST_DOM" || fail "demo $name: compare.html has no narrative"
    reports=("$dir"/*/report.html)
    [ "${#reports[@]}" -ge 2 ] || fail "demo $name: a sweep with ${#reports[@]} point reports"
    check_page "${reports[0]}" "demo $name $(basename "$(dirname "${reports[0]}")")"
    grep -q '<section id="teaching">' "$LAST_DOM" || fail "demo $name: its first point has no narrative"
  else
    check_page "$dir/report.html" "demo $name report.html"
    grep -q '<section id="teaching">' "$LAST_DOM" || fail "demo $name: report.html has no narrative"
  fi
  echo "demo $name: pages load without errors"
done
echo "demos: $pages pages, no errors"
