#!/usr/bin/env bash
# The README's first command (via `make demo`): validate the bundled example
# and show its resolved manifest. The release engine will extend this into a
# real zero-downtime deploy.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "\$ runway validate examples/hello"
bin/runway validate examples/hello
echo
echo "\$ runway config show hello --env production --dir examples/hello"
bin/runway config show hello --env production --dir examples/hello
