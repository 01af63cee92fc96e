#!/usr/bin/env bash
# Builds the consul and kube-apiserver binaries that internal/testserver runs.
#
# Each binary comes from its own module under tools/, so the main module's
# go.mod never carries Consul's or Kubernetes' dependency graph. The binaries
# go to $SIGNET_TOOLS_DIR (default: <repo>/.tools/bin). A binary that exists
# and is newer than its module's go.mod and go.sum and than this script is
# not rebuilt.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_dir="${SIGNET_TOOLS_DIR:-$repo_root/.tools/bin}"
mkdir -p "$tools_dir"
# Make the path absolute, because each build runs inside its module's folder.
tools_dir="$(cd "$tools_dir" && pwd)"

script="${BASH_SOURCE[0]}"

# build_tool NAME MODULE_DIR PACKAGE [GO_BUILD_FLAG...] builds PACKAGE from
# MODULE_DIR into $tools_dir/NAME unless that binary is already up to date.
build_tool() {
	local name=$1 module_dir=$2 package=$3
	shift 3
	local binary="$tools_dir/$name"

	if [[ -x $binary && $binary -nt $module_dir/go.mod && $binary -nt $module_dir/go.sum && $binary -nt $script ]]; then
		echo "build-tools: $name is up to date at $binary, skipping"
		return
	fi

	echo "build-tools: building $name ($package) into $binary"
	local started=$SECONDS
	# Build to a temporary name first, so an interrupted build never leaves
	# a partial binary that a later run would take as up to date.
	(cd "$module_dir" && go build "$@" -o "$binary.partial" "$package")
	mv -f "$binary.partial" "$binary"
	echo "build-tools: built $name in $((SECONDS - started))s"
}

build_tool consul "$repo_root/tools/consul" github.com/hashicorp/consul
# Kubernetes release builds set the version variables at link time. Without
# these flags kube-apiserver reports v0.0.0-master on /version and in its log.
kube_version="$(cd "$repo_root/tools/kube" && go list -m -f '{{.Version}}' k8s.io/kubernetes)"
kube_minor="${kube_version#v*.}"
kube_minor="${kube_minor%%.*}"
kube_major="${kube_version#v}"
kube_major="${kube_major%%.*}"
kube_version_pkg=k8s.io/component-base/version
build_tool kube-apiserver "$repo_root/tools/kube" k8s.io/kubernetes/cmd/kube-apiserver \
	-ldflags "-X $kube_version_pkg.gitVersion=$kube_version -X $kube_version_pkg.gitMajor=$kube_major -X $kube_version_pkg.gitMinor=$kube_minor"
