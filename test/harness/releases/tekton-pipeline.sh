#!/usr/bin/env bash
# Makes Tekton Pipelines' release from its Go module the way Tekton's own
# release does (tekton/publish.yaml: `ko resolve -R -f config/` with the
# version as tag, then "devel" replaced by the version), for this machine's
# platform, on the base images test/harness/images/debian-bases.sh made:
#
#   OUT/release.yaml  the release manifest; every image in it is
#                     registry.local:5000/...@sha256:<digest>
#   OUT/layout/       those images, as one OCI image layout
#   OUT/build.txt     what it was made from
#
# ko publishes to a registry (an OCI layout it writes names its images by
# path in the manifest), so a throwaway one on a loopback port takes them for
# the length of the build, as Tekton's release pushes to ghcr.io; the manifest
# then names the registry the tests' node pulls from (registry.local:5000)
# instead. An image's digest does not depend on the registry's name, so the
# manifest stays valid for the layout's images wherever they are pushed.
#
# Differences from Tekton's release, and why:
# - One platform (this machine's), not five: the node that runs it is this
#   machine; no Windows images (no Windows node, and their bases are
#   Microsoft's). ko then makes images, not indexes.
# - The controller's -shell-image (cgr.dev/chainguard/busybox) is our busybox
#   base; -shell-image-win (mcr.microsoft.com/powershell), which the
#   controller requires to be set and uses only for pods on Windows nodes,
#   names the same image, so that no reference leaves the machine.
# - No vendor/ source tarball in kodata/ (a licence courtesy of the published
#   images; the module has no vendor/) and no SBOMs (--sbom=none).
#
# Usage: TOOLS_BIN=.tools/bin tekton-pipeline.sh VERSION BASES OUT
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/harness/images/lib.sh
source "$here/../images/lib.sh"

version=${1:?usage: tekton-pipeline.sh VERSION BASES OUT}
bases=${2:?usage: tekton-pipeline.sh VERSION BASES OUT}
out=${3:?usage: tekton-pipeline.sh VERSION BASES OUT}
MODULE=github.com/tektoncd/pipeline
# Where the tests' node pulls from (DESIGN 3: one name everywhere).
REGISTRY=registry.local:5000
# What Tekton's release names its images after: ghcr.io/tektoncd/pipeline.
REPO_PATH=tektoncd/pipeline

need_tool ko
need_tool crane
command -v go >/dev/null || die "Go is needed to build Tekton Pipelines; install Go 1.26 or newer"
crane=$TOOLS_BIN/crane
arch=$(go_arch)
mkdir -p "$out"
tmp=$(mktemp -d)
cleanup() {
  stop_build_registry
  # The module cache's copies are read-only.
  chmod -R u+w "$tmp" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# The module, checked by the go command against the checksum database.
dir=$(cd "$tmp" && go mod download -json "$MODULE@$version" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$dir/config" ] || die "$MODULE@$version has no config/ (go mod download gave '$dir')"
src=$tmp/src
cp -r "$dir" "$src"
chmod -R u+w "$src"

start_build_registry "$tmp/registry.log"

# push_base NAME: the base into the build registry; prints its digest, which
# must be the one it was built with.
push_base() {
  local name=$1 want got
  want=$(cat "$bases/$name.digest")
  got=$("$crane" push "$bases/$name" "$BUILD_REGISTRY/bases/$name")
  [ "${got##*@}" = "$want" ] || die "base $name pushed as ${got##*@}, built as $want"
  printf '%s\n' "$want"
}
static=$REGISTRY/bases/static@$(push_base static)
tini_git=$REGISTRY/bases/tini-git@$(push_base tini-git)
busybox=$REGISTRY/bases/busybox@$(push_base busybox)
# ko takes its bases by digest from its cache (KOCACHE/img, an OCI layout)
# before any registry, so .ko.yaml names them as registry.local:5000 knows
# them: the name each image records as its base
# (org.opencontainers.image.base.name) is then the same at every build, and
# so are the images' digests.
export KOCACHE=$tmp/kocache
"$crane" pull --format=oci "$BUILD_REGISTRY/bases/static@${static##*@}" \
  "$BUILD_REGISTRY/bases/tini-git@${tini_git##*@}" "$KOCACHE/img"

# .ko.yaml: the module's, with each base replaced by ours. A release whose
# .ko.yaml overrides other binaries stops here rather than build them on the
# wrong base.
overrides=$(sed -n 's/^[[:space:]]*\(github\.com\/[^:]*\):.*/\1/p' "$src/.ko.yaml" | sort | tr '\n' ' ')
expected="$MODULE/cmd/entrypoint $MODULE/cmd/nop $MODULE/cmd/resolvers $MODULE/cmd/workingdirinit "
[ "$overrides" = "$expected" ] ||
  die "$MODULE@$version's .ko.yaml overrides the base of: $overrides(expected: $expected); update $0"
cat >"$src/.ko.yaml" <<EOF
# Made by test/harness/releases/tekton-pipeline.sh from $MODULE@$version's .ko.yaml.
defaultBaseImage: $static
baseImageOverrides:
  # Tekton's "combined" base: static-base plus Windows images; Linux only here.
  $MODULE/cmd/entrypoint: $static
  $MODULE/cmd/nop: $static
  $MODULE/cmd/workingdirinit: $static
  $MODULE/cmd/resolvers: $tini_git
EOF

# The controller's shell images: the only images config/ names outright.
controller=$src/config/controller.yaml
for flag in -shell-image -shell-image-win; do
  [ "$(grep -c "\"$flag\", \"" "$controller")" = 1 ] ||
    die "$controller does not set $flag once; update $0"
  sed -i "s|\"$flag\", \"[^\"]*\"|\"$flag\", \"$busybox\"|" "$controller"
done

log "building Tekton Pipelines $version with ko ($(go env GOVERSION), linux/$arch); a first build takes many minutes"
(
  cd "$src"
  export KO_DOCKER_REPO=$BUILD_REGISTRY/$REPO_PATH KO_CONFIG_PATH=$src
  export GOFLAGS='-mod=readonly -buildvcs=false'
  "$TOOLS_BIN/ko" resolve \
    --image-label=org.opencontainers.image.source=https://$MODULE \
    --image-label=org.opencontainers.image.url=https://$MODULE \
    --image-label=org.opencontainers.image.title=pipeline \
    --image-label='org.opencontainers.image.description=Tekton Pipelines' \
    --platform="linux/$arch" --sbom=none \
    -t "$version" -R -f config/ >"$tmp/release.yaml" 2>"$tmp/ko.log"
) || { tail -30 "$tmp/ko.log" >&2; die "ko resolve failed (above)"; }

# As publish.yaml does after ko resolve; then our registry's name for the
# build registry's.
sed -i -e "s/\(pipeline.tekton.dev\/release\): \"devel\"/\1: \"$version\"/g" \
  -e "s/\(app.kubernetes.io\/version\): \"devel\"/\1: \"$version\"/g" \
  -e "s/\(version\): \"devel\"/\1: \"$version\"/g" \
  -e "s|$BUILD_REGISTRY/$REPO_PATH/|$REGISTRY/$REPO_PATH/|g" "$tmp/release.yaml"
if grep -n -e "$BUILD_REGISTRY" -e 'ko://' "$tmp/release.yaml" >&2; then
  die "the release still names the build registry or an unbuilt ko:// path (above)"
fi

# Every image the release names, pulled from the build registry into one layout.
refs=$(grep -oE "[^ \"']+@sha256:[0-9a-f]{64}" "$tmp/release.yaml" | sort -u)
pulls=()
for ref in $refs; do
  case $ref in
    "$REGISTRY"/*) ;;
    *) die "the release names $ref, outside $REGISTRY" ;;
  esac
  repo=${ref%@*}
  repo=${repo#"$REGISTRY"/}
  repo=${repo%:*}
  pulls+=("$BUILD_REGISTRY/$repo@${ref##*@}")
done
"$crane" pull --format=oci "${pulls[@]}" "$out/layout"
mv "$tmp/release.yaml" "$out/release.yaml"
{
  echo "module $MODULE@$version"
  echo "ko $("$TOOLS_BIN/ko" version)"
  echo "go $(go env GOVERSION) linux/$arch"
  for name in static tini-git busybox; do echo "base $name $(cat "$bases/$name.digest")"; done
  # shellcheck disable=SC2086 # one line per reference
  printf 'image %s\n' $refs
} >"$out/build.txt"
log "Tekton Pipelines $version: $(wc -w <<<"$refs") images, release.yaml sha256 $(sha256sum "$out/release.yaml" | cut -c1-64)"
