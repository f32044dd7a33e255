#!/usr/bin/env bash
# make lint: the CI workflow with actionlint (pinned; it also runs shellcheck
# over each step's script) and the shell scripts with shellcheck. Offline
# once actionlint is built into bin/tools (git-ignored).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
ACTIONLINT_VERSION=v1.7.12
tools=$root/bin/tools
actionlint=$tools/actionlint

command -v shellcheck >/dev/null || { echo "lint: shellcheck is needed (scripts/deps.sh installs it)" >&2; exit 1; }
if ! [ -x "$actionlint" ] || [ "$("$actionlint" -version | head -n 1)" != "$ACTIONLINT_VERSION" ]; then
  echo "lint: building actionlint $ACTIONLINT_VERSION into $tools" >&2
  # go install pkg@version ignores this module, as intended.
  CGO_ENABLED=0 GOBIN=$tools GOFLAGS='' go install "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
fi

status=0
# -x: follow `source` of the libraries beside each script.
shellcheck -x -P SCRIPTDIR scripts/*.sh .ci/run || status=1
"$actionlint" -shellcheck "$(command -v shellcheck)" .github/workflows/*.yml || status=1
if [ "$status" -eq 0 ]; then
  echo "lint: ok ($(find scripts -name '*.sh' | wc -l) scripts, $(find .github/workflows -name '*.yml' | wc -l) workflow)"
fi
exit "$status"
