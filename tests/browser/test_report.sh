#!/usr/bin/env bash
# Browser test of report.html: headless Chromium (Debian's `chromium`, installed by
# scripts/setup) opens a generated report from a file path with all networking disabled, and
# the page must draw every chart with data and raise no error. The scenario is named
# <script>alert(1)</script>, which must show up as text, not run. A screenshot is kept in the
# output folder for people to look at.
# Usage: test_report.sh DTSIM_EXE OUTPUT_DIR
set -euo pipefail
exe="$1"
out="$2"
rm -rf "$out"
mkdir -p "$out"
source "$(dirname "$0")/common.sh"

cat > "$out/scenario.toml" <<'TOML'
name = "<script>alert(1)</script>"
description = "Escaping test: \"quotes\", <b>tags</b> & ampersands."
seed = 3
[model]
hidden = [16]
[data]
dataset = "blobs"
features = 8
classes = 3
train_samples = 600
test_samples = 300
[train]
batch_size = 10
epochs = 2
eval_every = 10
target_accuracy = 0.8
[cluster]
workers = 4
[strategy]
collective = "ring"
TOML
"$exe" run "$out/scenario.toml" -o "$out/run" -q >/dev/null

url="file://$out/run/report.html"
"$browser" "${flags[@]}" --user-data-dir="$out/profile1" --dump-dom "$url" >"$out/dom.html" 2>"$out/chromium.log" ||
  fail "chromium could not load the report (see $out/chromium.log)"
"$browser" "${flags[@]}" --user-data-dir="$out/profile2" --window-size=1280,2600 \
  --screenshot="$out/report.png" "$url" >/dev/null 2>>"$out/chromium.log" || fail "no screenshot"

body=$(grep -o '<body[^>]*>' "$out/dom.html" || true)
echo "body: $body"
charts=$(echo "$body" | sed -n 's/.*data-charts="\([0-9]*\)".*/\1/p')
points=$(echo "$body" | sed -n 's/.*data-points="\([0-9]*\)".*/\1/p')
errors=$(echo "$body" | sed -n 's/.*data-errors="\([^"]*\)".*/\1/p')
[ "$charts" = "9" ] || fail "expected 9 charts drawn, found '${charts}'"
[ -n "$points" ] && [ "$points" -gt 20 ] || fail "charts have too few data points: '${points}'"
spans=$(echo "$body" | sed -n 's/.*data-spans="\([0-9]*\)".*/\1/p')
[ -n "$spans" ] && [ "$spans" -gt 8 ] || fail "the timeline has too few spans: '${spans}'"
echo "$body" | grep -q 'data-errors=""' || fail "page errors: $errors"
if grep -E "Uncaught|CONSOLE.*(Error|error)" "$out/chromium.log" >/dev/null; then
  fail "console errors: $(grep -E 'Uncaught|CONSOLE' "$out/chromium.log" | head -3)"
fi
grep -q '<h1 id="title">&lt;script&gt;alert(1)&lt;/script&gt;</h1>' "$out/dom.html" ||
  fail "the scenario name is not shown as escaped text"
grep -q '<title>&lt;script&gt;alert(1)&lt;/script&gt; — dtsim report</title>' "$out/dom.html" ||
  fail "the page title is not escaped"
if grep -q '<script>alert(1)</script>' "$out/run/report.html"; then
  fail "raw scenario text reached the HTML"
fi
grep -q '<p class="finding" id="finding">It ended at test accuracy [01]\.[0-9]* after' "$out/dom.html" ||
  fail "the finding atop the report is missing"
[ -s "$out/report.png" ] || fail "empty screenshot"
echo "report.html: 9 charts, $points points, no errors; screenshot $out/report.png"

# A local-SGD run: replicas instead of a global version, so the staleness chart becomes the
# replicas' spread (consensus distance) against time.
"$exe" run "$out/scenario.toml" -o "$out/local" -q --set strategy.sync=local-sgd \
  --set strategy.local_steps=4 >/dev/null
lurl="file://$out/local/report.html"
"$browser" "${flags[@]}" --user-data-dir="$out/profile5" --dump-dom "$lurl" >"$out/local-dom.html" 2>>"$out/chromium.log" ||
  fail "chromium could not load the local-SGD report"
lbody=$(grep -o '<body[^>]*>' "$out/local-dom.html" || true)
echo "local-sgd body: $lbody"
echo "$lbody" | grep -q 'data-charts="9"' || fail "local-sgd report: expected 9 charts"
echo "$lbody" | grep -q 'data-errors=""' || fail "local-sgd report: page errors"
lpoints=$(echo "$lbody" | sed -n 's/.*data-points="\([0-9]*\)".*/\1/p')
[ -n "$lpoints" ] && [ "$lpoints" -gt "$points" ] || fail "local-sgd report: expected the spread's points too ('$lpoints')"
echo "local-sgd report.html: 9 charts, $lpoints points, no errors"

# compare.html from a two-point sweep.
cat "$out/scenario.toml" > "$out/sweep.toml"
printf '[sweep]\n"strategy.collective" = ["ring", "tree"]\n' >> "$out/sweep.toml"
"$exe" sweep "$out/sweep.toml" -o "$out/sweep" >/dev/null
curl="file://$out/sweep/compare.html"
"$browser" "${flags[@]}" --user-data-dir="$out/profile3" --dump-dom "$curl" >"$out/compare-dom.html" 2>>"$out/chromium.log" ||
  fail "chromium could not load compare.html"
"$browser" "${flags[@]}" --user-data-dir="$out/profile4" --window-size=1280,1400 \
  --screenshot="$out/compare.png" "$curl" >/dev/null 2>>"$out/chromium.log" || fail "no compare screenshot"
cbody=$(grep -o '<body[^>]*>' "$out/compare-dom.html" || true)
echo "compare body: $cbody"
echo "$cbody" | grep -q 'data-charts="4"' || fail "compare.html: expected 4 charts"
echo "$cbody" | grep -q 'data-errors=""' || fail "compare.html: page errors"
cpoints=$(echo "$cbody" | sed -n 's/.*data-points="\([0-9]*\)".*/\1/p')
[ -n "$cpoints" ] && [ "$cpoints" -gt 20 ] || fail "compare.html: too few points '$cpoints'"
grep -q '<h1 id="title">&lt;script&gt;alert(1)&lt;/script&gt;</h1>' "$out/compare-dom.html" ||
  fail "compare.html: the title is not shown as escaped text"
[ -s "$out/compare.png" ] || fail "empty compare screenshot"
echo "compare.html: 4 charts, $cpoints points, no errors; screenshot $out/compare.png"
# An emulated run's report (dtsim emulate under mpirun): its comparison section is shown.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpirun -np 4 --oversubscribe "$exe" emulate "$out/scenario.toml" -o "$out/emulated" -q >/dev/null ||
  fail "dtsim emulate failed"
eurl="file://$out/emulated/report.html"
"$browser" "${flags[@]}" --user-data-dir="$out/profile6" --dump-dom "$eurl" >"$out/emulated-dom.html" 2>>"$out/chromium.log" ||
  fail "chromium could not load the emulated report"
ebody=$(grep -o '<body[^>]*>' "$out/emulated-dom.html" || true)
echo "emulated body: $ebody"
echo "$ebody" | grep -q 'data-errors=""' || fail "emulated report: page errors"
grep -q '<section id="emulation">' "$out/emulated-dom.html" || fail "emulated report: no comparison section"
grep -q '<td>time per step</td>' "$out/emulated-dom.html" || fail "emulated report: no comparison table"
grep -q 'The final parameters are the simulation.s, bit for bit.' "$out/emulated-dom.html" ||
  fail "emulated report: the parameters' verdict is missing"
echo "emulated report.html: comparison shown, no errors"
echo "4 passed, 0 failed"
