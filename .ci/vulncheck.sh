#!/usr/bin/env bash
# Runs govulncheck on the repository against a local copy of the Go
# vulnerability database, so the scan needs no network beyond the Go module
# proxy.
#
# The database comes from the golang.org/x/vulndb module at a pinned version:
# its data/osv folder contains the OSV reports, and its cmd/indexdb turns them
# into the file:// layout that govulncheck reads. govulncheck and indexdb are
# built at pinned versions. Everything goes under
# ${SIGNET_TOOLS_DIR:-<repo>/.tools/bin}/vulncheck, one folder per version,
# and a folder that already exists is reused, so only the first run downloads
# and builds.
#
# Usage: bash .ci/vulncheck.sh [GOVULNCHECK_ARG...]   (default: ./...)
#
# Exit status is govulncheck's: 0 when no reachable vulnerability is found,
# 3 when the code calls a vulnerable symbol, and any other non-zero status
# when this script or the scan failed (for example a package does not build).
set -euo pipefail

govulncheck_version=v1.9.0
vulndb_version=v0.0.0-20261105234957-e22db6528018
# Module hash of golang.org/x/vulndb@$vulndb_version as go.sum records it.
vulndb_sum=h1:mfngRv0Yoh0VApsXKEN82CjD99kl7mtparN3bs3JnqI=

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_dir="${SIGNET_TOOLS_DIR:-$repo_root/.tools/bin}/vulncheck"
mkdir -p "$cache_dir"

# go mod download and go install pkg@version run in an empty folder, so the
# repository's go.mod and go.sum are never read or changed.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

log() {
	echo "vulncheck: $*" >&2
}

# govulncheck type-checks the standard library from source with the go/types
# that it was built with, so it is built by the Go version that the repository
# builds with. A go1.26 build fails to load go1.27 sources.
repo_go="$(cd "$repo_root" && go env GOVERSION)"

# install_tool DIR PACKAGE@VERSION [ENV...] installs PACKAGE into DIR unless
# DIR exists. It installs into DIR.partial first, so an interrupted build never
# leaves a folder that a later run would reuse.
install_tool() {
	local dir=$1 package=$2
	shift 2
	if [[ -d $dir ]]; then
		log "reusing $dir"
		return
	fi
	log "building $package into $dir"
	local started=$SECONDS
	rm -rf "$dir.partial"
	(cd "$scratch" && env "$@" GOBIN="$dir.partial" go install "$package")
	mv "$dir.partial" "$dir"
	log "built $package in $((SECONDS - started))s"
}

govulncheck_dir="$cache_dir/govulncheck-$govulncheck_version-$repo_go"
install_tool "$govulncheck_dir" "golang.org/x/vuln/cmd/govulncheck@$govulncheck_version" GOTOOLCHAIN="$repo_go"

db_dir="$cache_dir/db-$vulndb_version"
if [[ -f $db_dir/index/db.json ]]; then
	log "reusing database $db_dir"
else
	indexdb_dir="$cache_dir/indexdb-$vulndb_version"
	install_tool "$indexdb_dir" "golang.org/x/vulndb/cmd/indexdb@$vulndb_version"

	log "downloading golang.org/x/vulndb@$vulndb_version"
	download="$(cd "$scratch" && go mod download -json "golang.org/x/vulndb@$vulndb_version")" || {
		log "go mod download of golang.org/x/vulndb@$vulndb_version failed: $download"
		exit 1
	}
	# go mod download -json prints one field per line, as "Key": "value".
	json_field() {
		sed -n "s/^[[:space:]]*\"$1\": \"\(.*\)\",\{0,1\}$/\1/p" <<<"$download"
	}
	module_dir="$(json_field Dir)"
	module_sum="$(json_field Sum)"
	if [[ $module_sum != "$vulndb_sum" ]]; then
		log "golang.org/x/vulndb@$vulndb_version has hash '$module_sum', expected $vulndb_sum: check the module cache ($(go env GOMODCACHE)) and GOPROXY"
		exit 1
	fi
	if [[ ! -d $module_dir/data/osv ]]; then
		log "OSV folder $module_dir/data/osv not found in the downloaded module"
		exit 1
	fi

	log "indexing $module_dir/data/osv into $db_dir"
	started=$SECONDS
	rm -rf "$db_dir.partial"
	"$indexdb_dir/indexdb" -vulns "$module_dir/data/osv" -out "$db_dir.partial"
	mv "$db_dir.partial" "$db_dir"
	log "built database in $((SECONDS - started))s"
fi

if [[ $# -eq 0 ]]; then
	set -- ./...
fi

log "scanning with govulncheck $govulncheck_version, $repo_go, database golang.org/x/vulndb@$vulndb_version"
cd "$repo_root"
status=0
"$govulncheck_dir/govulncheck" -db "file://$db_dir" "$@" || status=$?
if [[ $status -eq 3 ]]; then
	log "reachable vulnerabilities found: upgrade each module to its 'Fixed in' version with go get module@version, or the Go toolchain for standard library findings"
fi
exit "$status"
