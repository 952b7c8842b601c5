# shellcheck shell=bash
# Steps shared by the Tekton release builders (tekton-pipeline.sh,
# tekton-chains.sh; sourced, not run). Each makes one Tekton project's
# release from its Go module the way the project's own publish Task does
# (`ko resolve` over its config/ with the version as tag, then "devel"
# replaced by the version), for this machine's platform, on the base images
# test/harness/images/debian-bases.sh made:
#
#   OUT/release.yaml  the release manifest; every image in it is
#                     registry.local:5000/...@sha256:<digest>
#   OUT/layout/       those images, as one OCI image layout
#   OUT/build.txt     what it was made from
#
# ko publishes to a registry (an OCI layout it writes names its images by
# path in the manifest), so a throwaway one on a loopback port takes them for
# the length of the build, as the projects' releases push to ghcr.io; the
# manifest then names the registry the tests' node pulls from
# (registry.local:5000) instead. An image's digest does not depend on the
# registry's name, so the manifest stays valid for the layout's images
# wherever they are pushed.
#
# Differences from the projects' releases, for every project:
# - One platform (this machine's): the node that runs it is this machine. ko
#   then makes images, not indexes.
# - No vendor/ source tarball in kodata/ (a licence courtesy of the published
#   images; the modules have no vendor/) and no SBOMs (--sbom=none).
#
# A builder sets MODULE (the Go module) and REPO_PATH (the repository its
# release names images under: ghcr.io/<REPO_PATH>/...), then calls in order:
#
#   release_start "$@"                the script's VERSION BASES OUT; the
#                                     module's source in $src (writable),
#                                     the build registry up, $tmp removed at exit
#   release_bases NAME...             those bases pushed and put in ko's cache;
#                                     BASE[NAME] is each one's reference
#   check_ko_yaml PACKAGE...          the module's .ko.yaml sets bases only,
#                                     overriding exactly these packages'
#   write_ko_yaml BASE [PACKAGE BASE]...  .ko.yaml with our bases instead
#   release_resolve KO-FLAGS...       ko resolve with the project's own flags
#   release_finish                    the version, our registry's name, the
#                                     layout and build.txt into OUT

# shellcheck source=test/harness/images/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../images/lib.sh"

# Where the tests' node pulls from (DESIGN 3: one name everywhere).
REGISTRY=registry.local:5000
declare -A BASE=()
BASE_NAMES=()

release_start() {
  [ $# -eq 3 ] || die "usage: TOOLS_BIN=.tools/bin $(basename "$0") VERSION BASES OUT"
  version=$1 bases=$2 out=$3
  : "${MODULE:?set MODULE before release_start}" "${REPO_PATH:?set REPO_PATH before release_start}"
  need_tool ko
  need_tool crane
  command -v go >/dev/null || die "Go is needed to build $MODULE; install Go 1.26 or newer"
  crane=$TOOLS_BIN/crane
  arch=$(go_arch)
  mkdir -p "$out"
  tmp=$(mktemp -d)
  trap release_cleanup EXIT

  # The module, checked by the go command against the checksum database.
  local dir
  dir=$(cd "$tmp" && go mod download -json "$MODULE@$version" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -d "$dir/config" ] || die "$MODULE@$version has no config/ (go mod download gave '$dir')"
  src=$tmp/src
  cp -r "$dir" "$src"
  chmod -R u+w "$src"

  start_build_registry "$tmp/registry.log"
  export KOCACHE=$tmp/kocache
}

release_cleanup() {
  stop_build_registry
  # The module cache's copies are read-only.
  chmod -R u+w "$tmp" 2>/dev/null || true
  rm -rf "$tmp"
}

release_bases() {
  local name want got pulls=()
  for name in "$@"; do
    want=$(cat "$bases/$name.digest")
    got=$("$crane" push "$bases/$name" "$BUILD_REGISTRY/bases/$name")
    [ "${got##*@}" = "$want" ] || die "base $name pushed as ${got##*@}, built as $want"
    BASE[$name]=$REGISTRY/bases/$name@$want
    BASE_NAMES+=("$name")
    pulls+=("$BUILD_REGISTRY/bases/$name@$want")
  done
  # ko takes its bases by digest from its cache (KOCACHE/img, an OCI layout)
  # before any registry, so .ko.yaml names them as registry.local:5000 knows
  # them: the name each image records as its base
  # (org.opencontainers.image.base.name) is then the same at every build, and
  # so are the images' digests. (A base ko does not use only sits there.)
  "$crane" pull --format=oci "${pulls[@]}" "$KOCACHE/img"
}

# A release whose .ko.yaml does more than choose bases (builds:, flags), or
# chooses them for other binaries than the builder knows, stops here rather
# than be built differently or on the wrong base.
check_ko_yaml() {
  local file=$src/.ko.yaml keys got want
  keys=$(sed -n 's/^\([A-Za-z][A-Za-z]*\):.*/\1/p' "$file" | sort -u | tr '\n' ' ')
  case $keys in
    'baseImageOverrides defaultBaseImage ' | 'defaultBaseImage ') ;;
    *) die "$MODULE@$version's .ko.yaml sets $keys(expected defaultBaseImage and baseImageOverrides only); update $0" ;;
  esac
  got=$(sed -n 's/^[[:space:]]*\(github\.com\/[^:]*\):.*/\1/p' "$file" | sort | tr '\n' ' ')
  want=$(for package in "$@"; do echo "$package"; done | sort | tr '\n' ' ')
  [ "$got" = "$want" ] ||
    die "$MODULE@$version's .ko.yaml overrides the base of: ${got:-nothing }(expected: ${want:-nothing}); update $0"
}

write_ko_yaml() {
  local default=$1
  shift
  {
    echo "# Made by $0 from $MODULE@$version's .ko.yaml."
    echo "defaultBaseImage: $default"
    [ $# -eq 0 ] || echo "baseImageOverrides:"
    while [ $# -gt 0 ]; do
      echo "  $1: $2"
      shift 2
    done
  } >"$src/.ko.yaml"
}

release_resolve() {
  log "building $MODULE $version with ko ($(go env GOVERSION), linux/$arch); a first build takes many minutes"
  (
    cd "$src"
    export KO_DOCKER_REPO=$BUILD_REGISTRY/$REPO_PATH KO_CONFIG_PATH=$src
    export GOFLAGS='-mod=readonly -buildvcs=false'
    "$TOOLS_BIN/ko" resolve "$@" --platform="linux/$arch" --sbom=none -t "$version" \
      >"$tmp/release.yaml" 2>"$tmp/ko.log"
  ) || { tail -30 "$tmp/ko.log" >&2; die "ko resolve failed (above)"; }
}

release_finish() {
  # As the publish Tasks do after ko resolve; then our registry's name for
  # the build registry's.
  sed -i -e "s/\(pipeline.tekton.dev\/release\): \"devel\"/\1: \"$version\"/g" \
    -e "s/\(app.kubernetes.io\/version\): \"devel\"/\1: \"$version\"/g" \
    -e "s/\(version\): \"devel\"/\1: \"$version\"/g" \
    -e "s|$BUILD_REGISTRY/$REPO_PATH/|$REGISTRY/$REPO_PATH/|g" "$tmp/release.yaml"
  if grep -n -e "$BUILD_REGISTRY" -e 'ko://' "$tmp/release.yaml" >&2; then
    die "the release still names the build registry or an unbuilt ko:// path (above)"
  fi

  # Every image the release names, pulled from the build registry into one layout.
  local refs ref repo pulls=()
  refs=$(grep -oE "[^ \"']+@sha256:[0-9a-f]{64}" "$tmp/release.yaml" | sort -u)
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
  local name
  {
    echo "module $MODULE@$version"
    echo "ko $("$TOOLS_BIN/ko" version)"
    echo "go $(go env GOVERSION) linux/$arch"
    for name in "${BASE_NAMES[@]}"; do echo "base $name ${BASE[$name]##*@}"; done
    # shellcheck disable=SC2086 # one line per reference
    printf 'image %s\n' $refs
  } >"$out/build.txt"
  log "$MODULE $version: $(wc -w <<<"$refs") images, release.yaml sha256 $(sha256sum "$out/release.yaml" | cut -c1-64), made in ${SECONDS}s"
}
