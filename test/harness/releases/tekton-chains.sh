#!/usr/bin/env bash
# Makes Tekton Chains' release from its Go module the way Chains' own release
# does (release/publish.yaml: `ko resolve -f config/` with the version as
# tag, then "devel" replaced by the version), on the static base image
# test/harness/images/debian-bases.sh made (standing in for the
# ghcr.io/wolfi-dev/static:alpine that Chains' .ko.yaml names). What it
# writes, and what every release made here does differently from the
# published ones: lib.sh.
#
# build.txt also records the versions of the modules that decide how this
# Chains talks to registries (go-containerregistry: which hosts it reaches
# over plain HTTP; cosign: how it reads keys and writes .sig/.att), as the
# module's go.mod selects them for the build.
#
# Usage: TOOLS_BIN=.tools/bin tekton-chains.sh VERSION BASES OUT
set -euo pipefail
# shellcheck source=test/harness/releases/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MODULE=github.com/tektoncd/chains
# What Chains' release names its images after: ghcr.io/tektoncd/chains.
REPO_PATH=tektoncd/chains
release_start "$@"
release_bases static

# shellcheck disable=SC2119 # no arguments: Chains' .ko.yaml overrides no package's base
check_ko_yaml
write_ko_yaml "${BASE[static]}"

release_resolve --image-label=org.opencontainers.image.source=https://$MODULE -f config/
release_finish
(cd "$src" && GOFLAGS=-mod=readonly go list -m -f 'dependency {{.Path}} {{.Version}}' \
  github.com/google/go-containerregistry github.com/sigstore/cosign/v2) >>"$out/build.txt"
