#!/usr/bin/env bash
# Installs the real tools the tests run against into .tools/ (git-ignored).
# Builds and downloads land in a cache outside the clone, so a second run, or a
# fresh clone on the same machine, only links what is already there.
#
#   Node 24   from the npm registry (node-linux-<arch>), sha512 pinned below
#   cosign    go install github.com/sigstore/cosign/v2/cmd/cosign
#   registry  go install github.com/google/go-containerregistry/cmd/registry
#   kind      go install sigs.k8s.io/kind (served by the install tests as a release asset)
#   opa       go install github.com/open-policy-agent/opa (runs the EC policy's
#             rego unit tests and checks in test/policy.test.ts)
#   actionlint  go install github.com/rhysd/actionlint/cmd/actionlint (checks
#             .github/workflows: .ci/run and test/workflows.test.ts)
#   ssh-keygen  Debian's openssh-client (an independent check of Chains' keyid)
#   ShellCheck  Debian's shellcheck: actionlint runs it on every `run:` script
#             when it is on PATH, and silently skips that check when it is not
#   chromium  Debian's chromium: draws the job summary's Mermaid diagram, headless
#             (test/summary-diagram.test.ts, npm run screenshot); a GitHub runner's
#             google-chrome does the same there (test/harness/browser.ts)
#   kube-apiserver, kube-controller-manager, etcd, and a node's
#   kubelet, kube-proxy, kube-scheduler
#             go build in scripts/kube (a wrapper module: k8s.io/kubernetes's own
#             go.mod points at its staging folders, so `go install` refuses it)
#   crane     go install github.com/google/go-containerregistry/cmd/crane (builds
#             and copies the Tekton images below)
#   ko        go install github.com/google/ko (builds Tekton's images, as
#             Tekton's own release does)
#   CNI plugins  go install github.com/containernetworking/plugins/... (bridge,
#             host-local, loopback, firewall), linked as .tools/cni/bin: the
#             node's pod network (test/harness/node/)
#   crictl    go install sigs.k8s.io/cri-tools/cmd/crictl: removes the node's
#             pod sandboxes through containerd's CRI when the harness stops it
#   pause image  the node's pod sandbox image, an OCI image layout tarball
#             (.tools/images/pause.tar) with a static build of Kubernetes' own
#             build/pause/linux/pause.c (gcc), since registry.k8s.io is out of reach
#   containerd, runc  Debian's (they come with docker.io); dnsmasq-base (the
#             node's DNS for registry.local), iptables, iproute2
#   python3   a virtualenv with trainer/requirements.txt (pip --require-hashes),
#             linked as .tools/venv; .tools/bin/python3 runs its interpreter
#   docker    Debian's docker.io (dockerd, containerd, runc) when no dockerd is
#             installed; the test harness starts the daemon when none answers
#   trainer base image
#             a root file system for `docker import`, from Debian packages
#             (debootstrap: bookworm with python3, pip, python-is-python3) with
#             the trainer's wheels (pip download --require-hashes) and a pip.conf
#             that installs from them only: the tests build the real
#             Containerfile on it (its BASE_IMAGE build argument) without any
#             registry or index, since Docker Hub is out of reach here;
#             linked as .tools/images/trainer-base.tar
#   Tekton Pipelines release
#             its images built with ko from its Go module (the version in
#             src/versions.ts) on base images made from Debian packages
#             (test/harness/images/debian-bases.sh), and its release.yaml
#             made from the module's config/ naming them in registry.local:5000
#             by digest (test/harness/releases/tekton-pipeline.sh); linked as
#             .tools/releases/tekton-pipeline (release.yaml, layout/)
#   Tekton Chains release
#             the same from Chains' Go module, at the newest version the module
#             proxy serves (TEKTON_CHAINS_VERSION below), on the same static
#             base (test/harness/releases/tekton-chains.sh); linked as
#             .tools/releases/tekton-chains
#
# Go modules are checked by the go command against go.sum's checksum database.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${OML_CHAINS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/oml-chains}
tools=$root/.tools

NODE_VERSION=24.21.0
# dist.integrity of node-linux-<arch>@$NODE_VERSION as the npm registry publishes it.
NODE_INTEGRITY_x64=sha512-3nULszZ5X0fciYpG0t6TrdApJzAn8+FlINP6OiMX7V8HrvpATPN936U1LlReOJriLRa4e8yEqQBYCnLyPNAs7Q==
NODE_INTEGRITY_arm64=sha512-FpJRPEz2OvvTLfjIOlNGFY9JLPMKgl5m+d4oGYBLg24kJ1mmvN1Zl/HPJgF4HDaJ51ISev1l1cRZ/DM+keXW5g==

COSIGN_MODULE=github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5
REGISTRY_MODULE=github.com/google/go-containerregistry/cmd/registry@v0.22.1
KIND_MODULE=sigs.k8s.io/kind@v0.32.0
OPA_MODULE=github.com/open-policy-agent/opa@v1.22.3
ACTIONLINT_MODULE=github.com/rhysd/actionlint/cmd/actionlint@v1.7.12
CRANE_MODULE=github.com/google/go-containerregistry/cmd/crane@v0.22.1
KO_MODULE=github.com/google/ko@v0.19.1
# The Tekton Pipelines release the tests build: the one the action installs.
TEKTON_PIPELINE_VERSION=$(sed -n "s/^export const tektonPipelinesVersion = '\(v[0-9.]*\)'$/\1/p" "$root/src/versions.ts")
# The Tekton Chains release the tests build: not the one the action pins
# (src/versions.ts), which the Go module proxy refuses (403), as it does every
# version after this one; this is the newest it serves.
TEKTON_CHAINS_VERSION=v0.26.3
# The release that goes with the Kubernetes minor scripts/kube pins.
CRICTL_MODULE=sigs.k8s.io/cri-tools/cmd/crictl@v1.36.0

log() { printf 'test-tools: %s\n' "$*" >&2; }
die() { printf 'test-tools: error: %s\n' "$*" >&2; exit 1; }

case "$(uname -m)" in
  x86_64 | amd64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) die "unsupported machine $(uname -m): Node 24 is installed for x86_64 and aarch64 only" ;;
esac
[ "$(uname -s)" = Linux ] || die "the test tools are installed on Linux only"

mkdir -p "$cache" "$tools/bin"

# link NAME TARGET: point .tools/bin/NAME at TARGET (cheap, so always refreshed).
link() { ln -sfn "$1" "$tools/bin/$2"; }

install_node() {
  local dir=$cache/node-$NODE_VERSION-linux-$arch
  if [ ! -x "$dir/bin/node" ]; then
    command -v npm >/dev/null || die "npm is needed to fetch Node $NODE_VERSION (install Node.js with npm first)"
    local want_var=NODE_INTEGRITY_$arch
    local want=${!want_var}
    local tmp
    tmp=$(mktemp -d "$cache/node.XXXXXX")
    log "fetching node-linux-$arch@$NODE_VERSION from the npm registry"
    (cd "$tmp" && npm pack --silent "node-linux-$arch@$NODE_VERSION" >/dev/null)
    local tgz=$tmp/node-linux-$arch-$NODE_VERSION.tgz
    local got
    got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
    [ "$got" = "$want" ] || die "node-linux-$arch@$NODE_VERSION: integrity $got, expected $want"
    tar -xzf "$tgz" -C "$tmp"
    rm -rf "$dir"
    mv "$tmp/package" "$dir"
    rm -rf "$tmp"
  fi
  link "$dir/bin/node" node
}

# go_tool NAME MODULE@VERSION: build once per version into the cache.
go_tool() {
  local name=$1 module=$2
  local dir=$cache/go/$name-${module##*@}
  if [ ! -x "$dir/$name" ]; then
    command -v go >/dev/null || die "Go is needed to build $name ($module); install Go 1.24 or newer"
    log "building $name from $module"
    GOBIN=$dir CGO_ENABLED=0 go install -trimpath "$module"
  fi
  link "$dir/$name" "$name"
}

# kube_tools: the Kubernetes control plane and a node's binaries from
# scripts/kube/go.mod. One `go build` for all of them, so the packages they
# share compile once. The cache folder is named after go.mod + go.sum: a
# version change there builds anew.
KUBE_TOOLS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy etcd)
kube_tools() {
  local module=$root/scripts/kube
  local key
  key=$(cat "$module/go.mod" "$module/go.sum" | sha256sum | cut -c1-12)
  local dir=$cache/go/kube-$key
  if [ ! -x "$dir/etcd" ]; then
    command -v go >/dev/null || die "Go is needed to build ${KUBE_TOOLS[*]} (scripts/kube); install Go 1.26 or newer"
    local version
    version=$(cd "$module" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
    local minor=${version#v1.}
    minor=${minor%%.*}
    # What Kubernetes' own build stamps in, so /version reports the release.
    local flags='' pkg
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      flags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
    done
    log "building ${KUBE_TOOLS[*]} (k8s.io/kubernetes $version) from scripts/kube; a first build takes many minutes"
    mkdir -p "$cache/go"
    local tmp
    tmp=$(mktemp -d "$cache/go/kube.XXXXXX")
    chmod 755 "$tmp"
    # The subshell's trap removes a half-built folder, also when interrupted.
    # (`set -e` does not apply inside a `( ) || die`, hence the && chain.)
    (
      trap 'rm -rf "$tmp"' EXIT
      cd "$module" &&
        CGO_ENABLED=0 go build -trimpath -ldflags "$flags" -o "$tmp/" \
          k8s.io/kubernetes/cmd/kube-apiserver \
          k8s.io/kubernetes/cmd/kube-controller-manager \
          k8s.io/kubernetes/cmd/kube-scheduler \
          k8s.io/kubernetes/cmd/kubelet \
          k8s.io/kubernetes/cmd/kube-proxy \
          go.etcd.io/etcd/server/v3 &&
        # go names etcd's main package after its module path (.../server/v3): "server".
        mv "$tmp/server" "$tmp/etcd" &&
        # Renamed into place last, so an interrupted build is never taken for a
        # finished one; if a concurrent run got there first, its copy stays.
        rm -rf "$dir" &&
        { mv -T "$tmp" "$dir" 2>/dev/null || [ -x "$dir/etcd" ]; }
    ) || die "building ${KUBE_TOOLS[*]} failed (see above)"
  fi
  local name
  for name in "${KUBE_TOOLS[@]}"; do link "$dir/$name" "$name"; done
}

# python_venv: the trainer's Python packages, hash-checked by pip. The cache
# folder is named after the requirements files: a pin change builds anew.
python_venv() {
  command -v python3 >/dev/null || die "python3 (3.11 or newer, with venv) is needed for the trainer tests"
  local key
  key=$(cat "$root"/trainer/requirements*.txt | sha256sum | cut -c1-12)
  local dir=$cache/python/venv-$key
  if [ ! -x "$dir/bin/python3" ] || [ ! -f "$dir/.complete" ]; then
    log "creating the trainer virtualenv from trainer/requirements.txt"
    mkdir -p "$cache/python"
    # A venv's scripts name its own path, so it is built where it will live:
    # under a lock (concurrent runs), with a marker written last, so an
    # interrupted build is never taken for a finished one.
    (
      exec 9>"$cache/python/venv-$key.lock"
      flock 9
      [ -f "$dir/.complete" ] && exit 0
      {
        rm -rf "$dir" &&
          python3 -m venv "$dir" &&
          "$dir/bin/python3" -m pip install --quiet --disable-pip-version-check --no-input \
            --require-hashes -r "$root/trainer/requirements.txt" &&
          # A symlink to a venv's interpreter does not find the venv (Python looks
          # next to the link for pyvenv.cfg), hence a two-line launcher.
          printf '#!/bin/sh\nexec "%s/bin/python3" "$@"\n' "$dir" >"$dir/python3" &&
          chmod 755 "$dir/python3" &&
          touch "$dir/.complete"
      } || { rm -rf "$dir"; exit 1; }
    ) || die "creating the trainer virtualenv failed (see above)"
  fi
  ln -sfn "$dir" "$tools/venv"
  link "$dir/python3" python3
}

# as_root COMMAND...: root already, or passwordless sudo (a GitHub runner).
can_be_root() { [ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null; }
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi
}

# ensure_command COMMAND PACKAGE: a system package, installed with apt-get where
# we may, else the error says how.
apt_updated=false
ensure_command() {
  local command=$1 package=$2
  command -v "$command" >/dev/null && return
  install_package "$package" "$command"
}
# ensure_file FILE PACKAGE: the same, for a package known by a file it installs.
ensure_file() {
  [ -e "$1" ] || install_package "$2" "$1"
}
install_package() {
  local package=$1 command=$2
  if can_be_root && command -v apt-get >/dev/null; then
    log "installing $package ($command)"
    if [ "$apt_updated" = false ]; then as_root apt-get update -qq && apt_updated=true; fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
  else
    die "$command is missing: install $package (e.g. sudo apt-get install $package)"
  fi
}

# trainer_base: the root file system of the base image the tests build the
# trainer's Containerfile on. Named after its recipe (this function's package
# list and pip.conf) and the requirements: a change there makes a new one.
TRAINER_BASE_SUITE=bookworm
TRAINER_BASE_MIRROR=http://deb.debian.org/debian
TRAINER_BASE_PACKAGES=python3,python3-pip,python-is-python3
trainer_base() {
  local key
  key=$(printf '%s\n' "$TRAINER_BASE_SUITE" "$TRAINER_BASE_PACKAGES" "recipe 1" |
    cat - "$root/trainer/requirements.txt" | sha256sum | cut -c1-12)
  local tar=$cache/images/trainer-base-$key.tar
  if [ ! -f "$tar" ]; then
    command -v python3 >/dev/null || die "python3 is needed to fetch the trainer's wheels"
    log "making the trainer base image's root file system (debootstrap $TRAINER_BASE_SUITE: $TRAINER_BASE_PACKAGES)"
    mkdir -p "$cache/images"
    local tmp
    tmp=$(mktemp -d "$cache/images/base.XXXXXX")
    (
      # debootstrap's files belong to root: removed as root, also when interrupted.
      trap 'as_root rm -rf "$tmp/rootfs"; rm -rf "$tmp"' EXIT
      local rootfs=$tmp/rootfs
      as_root debootstrap --variant=minbase --include="$TRAINER_BASE_PACKAGES" \
        "$TRAINER_BASE_SUITE" "$rootfs" "$TRAINER_BASE_MIRROR" >"$tmp/debootstrap.log" 2>&1 ||
        { tail -20 "$tmp/debootstrap.log" >&2; exit 1; }
      # What the official python image is like: pip may install system-wide.
      as_root rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
      as_root rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
      # The wheels requirements.txt pins, checked against its hashes here and
      # again by the Containerfile's own pip install, which finds only these.
      python3 -m pip download --quiet --disable-pip-version-check --no-input \
        --only-binary=:all: --require-hashes -r "$root/trainer/requirements.txt" -d "$tmp/wheels"
      as_root mkdir -p "$rootfs/opt/wheels"
      as_root cp "$tmp"/wheels/*.whl "$rootfs/opt/wheels/"
      printf '[global]\nno-index = true\nfind-links = /opt/wheels\n' >"$tmp/pip.conf"
      as_root cp "$tmp/pip.conf" "$rootfs/etc/pip.conf"
      as_root tar --numeric-owner -C "$rootfs" -cf - . >"$tmp/base.tar"
      mv "$tmp/base.tar" "$tar"
    ) || die "making the trainer base image failed (see above)"
  fi
  mkdir -p "$tools/images"
  ln -sfn "$tar" "$tools/images/trainer-base.tar"
}

# tekton_release NAME VERSION: one Tekton project's release and its images
# (test/harness/releases/NAME.sh), made once per recipe and pinned versions,
# in two steps cached apart: the bases, which change seldom and take a
# debootstrap, are made at most once for all the releases; each release
# takes a ko build. Each folder is named after what it is built from, built
# in a temporary one and renamed into place last, so an interrupted build is
# never taken for a finished one. Linked as .tools/releases/NAME.
tekton_release() {
  local name=$1 version=$2
  [ -n "$version" ] || die "no version to build $name at (tekton-pipeline's is src/versions.ts's tektonPipelinesVersion)"
  local lib=$root/test/harness/images/lib.sh
  local bases_script=$root/test/harness/images/debian-bases.sh
  local release_lib=$root/test/harness/releases/lib.sh
  local release_script=$root/test/harness/releases/$name.sh
  local bases_key release_key
  bases_key=$({ cat "$lib" "$bases_script"; echo "$CRANE_MODULE $(uname -m)"; } | sha256sum | cut -c1-12)
  release_key=$({
    cat "$lib" "$release_lib" "$release_script"
    echo "$bases_key $version $KO_MODULE $CRANE_MODULE"
  } | sha256sum | cut -c1-12)
  local bases=$cache/images/tekton-bases-$bases_key
  local release=$cache/releases/$name-$version-$release_key
  export TOOLS_BIN=$tools/bin
  local tmp
  if [ ! -d "$release" ] && [ ! -d "$bases" ]; then
    can_be_root || die "the Tekton base images are made with debootstrap: run as root, or with passwordless sudo"
    mkdir -p "$cache/images"
    tmp=$(mktemp -d "$cache/images/tekton-bases.XXXXXX")
    (
      trap 'as_root rm -rf "$tmp"' EXIT
      as_root env TOOLS_BIN="$TOOLS_BIN" bash "$bases_script" "$tmp/out" &&
        as_root chown -R "$(id -u):$(id -g)" "$tmp/out" &&
        { mv -T "$tmp/out" "$bases" 2>/dev/null || [ -d "$bases" ]; }
    ) || die "making the Tekton base images failed (see above)"
  fi
  if [ ! -d "$release" ]; then
    mkdir -p "$cache/releases"
    tmp=$(mktemp -d "$cache/releases/$name.XXXXXX")
    (
      trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
      bash "$release_script" "$version" "$bases" "$tmp/out" &&
        { mv -T "$tmp/out" "$release" 2>/dev/null || [ -d "$release" ]; }
    ) || die "making the $name release failed (see above)"
  fi
  mkdir -p "$tools/releases"
  ln -sfn "$release" "$tools/releases/$name"
}

# cni_plugins: the CNI plugins the node's containerd runs for every pod
# sandbox (test/harness/node/cni.ts): its network on a bridge, addresses from
# host-local, the FORWARD rules that let pod traffic through (firewall), and
# the pod's loopback (containerd's CRI sets that up itself, with this plugin).
CNI_PLUGINS_MODULE=github.com/containernetworking/plugins
CNI_PLUGINS_VERSION=v1.10.0
CNI_PLUGINS=(main/bridge main/loopback ipam/host-local meta/firewall)
cni_plugins() {
  local dir=$cache/go/cni-plugins-$CNI_PLUGINS_VERSION
  local plugin missing=()
  for plugin in "${CNI_PLUGINS[@]}"; do
    [ -x "$dir/${plugin##*/}" ] || missing+=("$CNI_PLUGINS_MODULE/plugins/$plugin@$CNI_PLUGINS_VERSION")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    command -v go >/dev/null || die "Go is needed to build the CNI plugins ($CNI_PLUGINS_MODULE); install Go 1.26 or newer"
    log "building the CNI plugins ${CNI_PLUGINS[*]} ($CNI_PLUGINS_MODULE $CNI_PLUGINS_VERSION)"
    GOBIN=$dir CGO_ENABLED=0 go install -trimpath "${missing[@]}"
  fi
  mkdir -p "$tools/cni"
  ln -sfn "$dir" "$tools/cni/bin"
}

# pause_image: the image containerd runs as every pod's sandbox, as an OCI
# image layout tarball for `ctr images import` (linked as .tools/images/pause.tar).
# Built the way Kubernetes' build/pause/Makefile builds it (a static gcc build
# of linux/pause.c, user 65535, entrypoint /pause, nothing else in the image),
# from the k8s.io/kubernetes module scripts/kube pins: registry.k8s.io, where
# the published one lives, is out of reach here. Its name says so: the
# localhost/ prefix is never pulled from anywhere but this machine.
PAUSE_RECIPE="pause recipe 1"
pause_image() {
  local module=$root/scripts/kube
  local platform_arch
  case "$arch" in x64) platform_arch=amd64 ;; arm64) platform_arch=arm64 ;; esac
  # Named after the recipe and go.sum's hash of the k8s.io/kubernetes module
  # (which holds pause.c), so a warm run needs no go command.
  local key
  key=$({ printf '%s\n' "$PAUSE_RECIPE" "$platform_arch" && grep '^k8s.io/kubernetes ' "$module/go.sum"; } |
    sha256sum | cut -c1-12)
  local tar=$cache/images/pause-$key.tar
  if [ ! -f "$tar" ]; then
    command -v go >/dev/null || die "Go is needed to fetch pause.c (k8s.io/kubernetes); install Go 1.26 or newer"
    local src
    src=$(cd "$module" && go mod download k8s.io/kubernetes && go list -m -f '{{.Dir}}' k8s.io/kubernetes) ||
      die "cannot find the k8s.io/kubernetes module for the pause image"
    local makefile=$src/build/pause/Makefile code=$src/build/pause/linux/pause.c
    local version
    version=$(sed -n 's/^TAG ?= *//p' "$makefile")
    [ -n "$version" ] || die "no TAG in $makefile"
    log "building the pause image $version from $code"
    mkdir -p "$cache/images"
    local tmp
    tmp=$(mktemp -d "$cache/images/pause.XXXXXX")
    (
      trap 'rm -rf "$tmp"' EXIT
      # (`set -e` does not apply inside a `( ) || die`: each step says `|| exit 1`.)
      mkdir -p "$tmp/rootfs" "$tmp/layout/blobs/sha256" || exit 1
      gcc -Os -Wall -Werror -static "-DVERSION=v$version-oml-chains" -o "$tmp/rootfs/pause" "$code" || exit 1
      strip "$tmp/rootfs/pause" && chmod 0755 "$tmp/rootfs/pause" || exit 1
      # Reproducible: fixed owner and time, so the same source gives the same digest.
      tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
        -C "$tmp/rootfs" -cf "$tmp/layer.tar" pause || exit 1
      # blob FILE: moves FILE into the layout's blobs; prints `"digest":...,"size":...`.
      blob() {
        local hex size
        hex=$(sha256sum "$1" | cut -d' ' -f1) && size=$(stat -c %s "$1") &&
          mv "$1" "$tmp/layout/blobs/sha256/$hex" &&
          printf '"digest":"sha256:%s","size":%s' "$hex" "$size"
      }
      local layer_hex layer config manifest
      layer_hex=$(sha256sum "$tmp/layer.tar" | cut -d' ' -f1) || exit 1
      layer=$(blob "$tmp/layer.tar") || exit 1
      printf '{"architecture":"%s","os":"linux","config":{"User":"65535:65535","Entrypoint":["/pause"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
        "$platform_arch" "$layer_hex" >"$tmp/config.json" || exit 1
      config=$(blob "$tmp/config.json") || exit 1
      printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json",%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar",%s}]}' \
        "$config" "$layer" >"$tmp/manifest.json" || exit 1
      manifest=$(blob "$tmp/manifest.json") || exit 1
      # The name containerd imports it as: the harness reads it back from here.
      printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",%s,"annotations":{"io.containerd.image.name":"localhost/oml-chains-test/pause:%s","org.opencontainers.image.ref.name":"%s"}}]}' \
        "$manifest" "$version" "$version" >"$tmp/layout/index.json" || exit 1
      printf '{"imageLayoutVersion":"1.0.0"}' >"$tmp/layout/oci-layout" || exit 1
      tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
        -C "$tmp/layout" -cf "$tmp/pause.tar" oci-layout index.json blobs || exit 1
      mv "$tmp/pause.tar" "$tar"
    ) || die "building the pause image failed (see above)"
  fi
  mkdir -p "$tools/images"
  ln -sfn "$tar" "$tools/images/pause.tar"
}

ensure_command ssh-keygen openssh-client
ensure_command shellcheck shellcheck
# Docker builds and runs the trainer image in the tests. The engine, not only
# the client: some machines ship a docker client alone.
ensure_command dockerd docker.io
# debootstrap checks Debian's release signatures (an Ubuntu runner lacks the keys).
ensure_command debootstrap debootstrap
ensure_file /usr/share/keyrings/debian-archive-keyring.gpg debian-archive-keyring
[ -x /usr/bin/google-chrome ] || [ -x /usr/bin/chromium-browser ] || ensure_command chromium chromium
# The node the harness runs pods on (test/harness/node/). containerd and runc
# come with docker.io (or Docker's own containerd.io); ctr imports the pause image.
ensure_command containerd containerd
ensure_command ctr containerd
ensure_command runc runc
# The node's DNS: the binary alone (dnsmasq-base), not the dnsmasq service
# package, which would start a system-wide resolver on installation.
ensure_command dnsmasq dnsmasq-base
ensure_command iptables iptables
ensure_command iptables-save iptables
ensure_command ip iproute2
ensure_command flock util-linux
# The pause image is a static C binary.
ensure_command gcc gcc
ensure_file "$(gcc -print-file-name=libc.a | grep '^/' || echo /usr/lib/libc.a)" libc6-dev
# Independent installs run concurrently; each one's failure fails the script.
pids=()
install_node & pids+=($!)
go_tool cosign "$COSIGN_MODULE" & pids+=($!)
go_tool registry "$REGISTRY_MODULE" & registry_pid=$!
go_tool kind "$KIND_MODULE" & pids+=($!)
go_tool opa "$OPA_MODULE" & pids+=($!)
go_tool actionlint "$ACTIONLINT_MODULE" & pids+=($!)
go_tool crane "$CRANE_MODULE" & crane_pid=$!
go_tool ko "$KO_MODULE" & ko_pid=$!
go_tool crictl "$CRICTL_MODULE" & pids+=($!)
kube_tools & pids+=($!)
cni_plugins & pids+=($!)
pause_image & pids+=($!)
python_venv & pids+=($!)
trainer_base & pids+=($!)
status=0
# Tekton's releases are built with registry, crane and ko only: they start as
# soon as those are there, alongside the longer builds; one after the other,
# so that the bases they share are made once and two ko builds do not share
# the CPUs.
for pid in "$registry_pid" "$crane_pid" "$ko_pid"; do wait "$pid" || status=1; done
if [ "$status" = 0 ]; then
  {
    tekton_release tekton-pipeline "$TEKTON_PIPELINE_VERSION" &&
      tekton_release tekton-chains "$TEKTON_CHAINS_VERSION"
  } &
  pids+=($!)
fi
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
[ "$status" = 0 ] || die "some tools failed to install (see above)"

log "ready in $tools/bin: $(ls "$tools/bin" | tr '\n' ' ')"
