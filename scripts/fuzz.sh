#!/usr/bin/env bash
# Runs every fuzz target of the module (every `func FuzzXxx(f *testing.F)`
# in a _test.go file, in any package), one at a time, each for $FUZZTIME
# (default 20s), and fails if any fails. A failing input is saved by go test
# under the package's testdata/fuzz/FuzzXxx/: commit it as a seed once fixed.
#
#   scripts/fuzz.sh                      # every target
#   FUZZTIME=1m scripts/fuzz.sh          # longer
#   scripts/fuzz.sh ./internal/pull      # the targets of some packages only
#
# `go test` (make test) already runs each target's seeds as a unit test.
set -uo pipefail

cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-20s}
pkgs=("$@")
[ ${#pkgs[@]} -eq 0 ] && pkgs=(./...)

# package import path and directory, one a line
mapfile -t lines < <(go list -f '{{.ImportPath}} {{.Dir}}' "${pkgs[@]}")
if [ ${#lines[@]} -eq 0 ]; then
	echo "fuzz: no packages" >&2
	exit 1
fi
module=$(go list -m)

targets=()
for line in "${lines[@]}"; do
	pkg=${line%% *}
	dir=${line#* }
	for f in "$dir"/*_test.go; do
		[ -e "$f" ] || continue
		while read -r name; do
			targets+=("./${pkg#"$module"/} $name")
		done < <(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*\*testing\.F).*/\1/p' "$f")
	done
done
if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz: no fuzz targets found" >&2
	exit 1
fi

echo "fuzz: ${#targets[@]} targets, $fuzztime each"
failed=()
for t in "${targets[@]}"; do
	pkg=${t% *}
	name=${t#* }
	echo "== $pkg $name"
	start=$(date +%s)
	if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg"; then
		echo "ok   $pkg $name ($(($(date +%s) - start))s)"
	else
		echo "FAIL $pkg $name ($(($(date +%s) - start))s)"
		failed+=("$pkg $name")
	fi
done

echo
if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: ${#failed[@]} of ${#targets[@]} targets failed:"
	printf '  %s\n' "${failed[@]}"
	exit 1
fi
echo "fuzz: all ${#targets[@]} targets passed"
