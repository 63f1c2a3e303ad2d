# Shared by the browser tests (sourced): `fail`, the Chromium binary in $browser, and $flags,
# its headless options with all networking disabled.
fail() { echo "FAIL: $*" >&2; exit 1; }

browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || fail "chromium is not installed (scripts/setup installs Debian's chromium)"
flags=(--headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking
       --disable-component-update --disable-sync --disable-extensions
       --host-resolver-rules="MAP * ~NOTFOUND, EXCLUDE localhost" --proxy-server="127.0.0.1:9"
       --enable-logging=stderr --v=0 --virtual-time-budget=10000)
