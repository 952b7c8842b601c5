#!/usr/bin/env bash
# Installs the real tools the tests run against into .tools/ (git-ignored).
# Builds and downloads land in a cache outside the clone, so a second run, or a
# fresh clone on the same machine, only links what is already there.
#
#   Node 24   from the npm registry (node-linux-<arch>), sha512 pinned below
#   cosign    go install github.com/sigstore/cosign/v2/cmd/cosign
#   registry  go install github.com/google/go-containerregistry/cmd/registry
#   ssh-keygen  Debian's openssh-client (an independent check of Chains' keyid)
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

# A system package: installed with apt-get where we may, else the error says how.
ensure_ssh_keygen() {
  command -v ssh-keygen >/dev/null && return
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log 'installing openssh-client (ssh-keygen)'
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-client >/dev/null
  else
    die 'ssh-keygen is missing: install openssh-client (e.g. sudo apt-get install openssh-client)'
  fi
}

ensure_ssh_keygen
# Independent installs run concurrently; each one's failure fails the script.
pids=()
install_node & pids+=($!)
go_tool cosign "$COSIGN_MODULE" & pids+=($!)
go_tool registry "$REGISTRY_MODULE" & pids+=($!)
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
[ "$status" = 0 ] || die "some tools failed to install (see above)"

log "ready in $tools/bin: $(ls "$tools/bin" | tr '\n' ' ')"
