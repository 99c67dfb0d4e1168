#!/usr/bin/env bash
# Builds the kreuzwerker/docker Terraform provider from the Go module proxy
# into a filesystem mirror (no Terraform registry is needed), and writes a
# Terraform CLI configuration that installs providers from it.
#
#   deploy/terraform/provider-mirror.sh      # prints the mirror directory
#
# The mirror is cached in $MERIDIAN_TF_MIRROR (default
# ~/.cache/meridian/terraform-mirror); a rerun with the binary present does
# nothing. Use it with: export TF_CLI_CONFIG_FILE=$MIRROR/terraformrc
set -euo pipefail
mirror=${MERIDIAN_TF_MIRROR:-${XDG_CACHE_HOME:-$HOME/.cache}/meridian/terraform-mirror}
module=github.com/kreuzwerker/terraform-provider-docker
version=${DOCKER_PROVIDER_VERSION:-4.6.0}
os_arch=$(go env GOOS)_$(go env GOARCH)
dest=$mirror/registry.terraform.io/kreuzwerker/docker/$version/$os_arch/terraform-provider-docker_v$version
mkdir -p "$mirror"
# One build at a time: a second caller (test.sh's early start and the
# deploy tests' own) waits for the first and then finds the binary.
exec 9>"$mirror/.lock"
flock 9
if [ ! -x "$dest" ]; then
	# The proxy serves this module only at @latest (a pseudo-version of the
	# v4.6.0 source); its go.mod names another path, so it is built inside
	# its own module directory, and installed under the version $version.
	dl=$(mktemp -d) # outside any module, so no go.mod is consulted
	src=$(cd "$dl" && go mod download -json "$module@latest" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
	rmdir "$dl"
	[ -n "$src" ] || { echo "go mod download $module@latest failed" >&2; exit 1; }
	work=$(mktemp -d)
	trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
	cp -r "$src/." "$work/"
	chmod -R u+w "$work"
	mkdir -p "$(dirname "$dest")"
	(cd "$work" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$dest.tmp" .)
	mv "$dest.tmp" "$dest"
fi
cat > "$mirror/terraformrc" <<RC
provider_installation {
  filesystem_mirror {
    path    = "$mirror"
    include = ["registry.terraform.io/*/*"]
  }
  direct {
    exclude = ["registry.terraform.io/*/*"]
  }
}
RC
echo "$mirror"
