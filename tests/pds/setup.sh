#!/usr/bin/env bash
# Install the real Bluesky PDS used by the integration and contract tests.
#
#   bash tests/pds/setup.sh        # prints the install folder on stdout
#
# The packages go into a cache OUTSIDE the repository,
#   ${CROSSPOST_TEST_CACHE:-~/.cache/crosspost-test}/pds-<hash of package.json + lock>/
# so a second run (or CI on a machine that ran it before) takes well under a second.
# A cold install takes about 3-5 minutes and 360 MB (npm ci, then compiling the
# better-sqlite3 native module, which npm 11 does not build during install).
# Tests start tests/pds/serve.js with NODE_PATH=<folder>/node_modules.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${CROSSPOST_TEST_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/crosspost-test}"
hash="$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -c1-16)"
target="$cache/pds-$hash"

log() { printf 'pds setup: %s\n' "$*" >&2; }

if [ -f "$target/.ready" ]; then
    printf '%s\n' "$target"
    exit 0
fi

command -v node >/dev/null || { log "node is not installed (needs Node 20: apt-get install nodejs npm)"; exit 1; }
command -v npm >/dev/null || { log "npm is not installed (apt-get install npm)"; exit 1; }
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 20 ]; then
    log "Node $(node --version) is too old: @atproto/dev-env 0.3.215 needs Node 20"
    exit 1
fi

mkdir -p "$cache"
# One installer at a time (parallel test runs); the others wait and reuse its result.
exec 9>"$cache/.pds-setup.lock"
flock 9
if [ -f "$target/.ready" ]; then
    printf '%s\n' "$target"
    exit 0
fi

started=$SECONDS
work="$target.partial"
rm -rf "$work"
mkdir -p "$work"
cp "$here/package.json" "$here/package-lock.json" "$work/"
log "installing @atproto/dev-env into $target (a few minutes, once)"
(cd "$work" && npm ci --no-audit --no-fund --loglevel=error >&2)

# npm 11 skips install scripts: compile better-sqlite3 unless a build already loads.
sqlite_ok() { (cd "$work" && node -e "new (require('better-sqlite3'))(':memory:').close()" 2>/dev/null); }
if ! sqlite_ok; then
    log "compiling better-sqlite3"
    (cd "$work" && npm rebuild better-sqlite3 --loglevel=error >&2)
fi
sqlite_ok || { log "better-sqlite3 does not load after npm rebuild"; exit 1; }
(cd "$work" && node -e "require('@atproto/dev-env')") || { log "@atproto/dev-env does not load"; exit 1; }

touch "$work/.ready"
rm -rf "$target"
mv "$work" "$target"
log "ready in $((SECONDS - started)) s"
printf '%s\n' "$target"
