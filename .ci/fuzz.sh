#!/usr/bin/env bash
# Runs every fuzz target for a fixed number of inputs, FUZZ_INPUTS (default
# 200000). A count, not a duration, because a -fuzztime duration can end with a
# spurious "context deadline exceeded" on go1.26.8. For a longer local run:
#   FUZZ_INPUTS=2000000 bash .ci/fuzz.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

inputs="${FUZZ_INPUTS:-200000}"
targets=(
	"./internal/record FuzzParse"
	"./internal/record FuzzAppendCanonical"
	"./internal/record FuzzCanonicalAddress"
	"./verify FuzzVerifyToken"
	"./verify FuzzParseBundle"
	"./verify FuzzParseRevocations"
)

for target in "${targets[@]}"; do
	read -r pkg name <<<"$target"
	echo "fuzz: $name in $pkg, $inputs inputs"
	go test -run='^$' -fuzz="^${name}\$" -fuzztime="${inputs}x" "$pkg"
done
