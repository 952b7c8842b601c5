#!/usr/bin/env bash
# Makes Tekton Pipelines' release from its Go module the way Tekton's own
# release does (tekton/publish.yaml: `ko resolve -R -f config/` with the
# version as tag, then "devel" replaced by the version), on the base images
# test/harness/images/debian-bases.sh made. What it writes, and what every
# release made here does differently from the published ones: lib.sh.
#
# Differences from Tekton's release, and why:
# - No Windows images (no Windows node, and their bases are Microsoft's): the
#   images .ko.yaml builds on Tekton's "combined" base (static-base plus
#   Windows images) are built on our static base.
# - The controller's -shell-image (cgr.dev/chainguard/busybox) is our busybox
#   base; -shell-image-win (mcr.microsoft.com/powershell), which the
#   controller requires to be set and uses only for pods on Windows nodes,
#   names the same image, so that no reference leaves the machine.
#
# Usage: TOOLS_BIN=.tools/bin tekton-pipeline.sh VERSION BASES OUT
set -euo pipefail
# shellcheck source=test/harness/releases/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MODULE=github.com/tektoncd/pipeline
# What Tekton's release names its images after: ghcr.io/tektoncd/pipeline.
REPO_PATH=tektoncd/pipeline
release_start "$@"
release_bases static tini-git busybox

check_ko_yaml "$MODULE/cmd/entrypoint" "$MODULE/cmd/nop" "$MODULE/cmd/resolvers" "$MODULE/cmd/workingdirinit"
write_ko_yaml "${BASE[static]}" \
  "$MODULE/cmd/entrypoint" "${BASE[static]}" \
  "$MODULE/cmd/nop" "${BASE[static]}" \
  "$MODULE/cmd/workingdirinit" "${BASE[static]}" \
  "$MODULE/cmd/resolvers" "${BASE[tini-git]}"

# The controller's shell images: the only images config/ names outright.
controller=$src/config/controller.yaml
for flag in -shell-image -shell-image-win; do
  [ "$(grep -c "\"$flag\", \"" "$controller")" = 1 ] ||
    die "$controller does not set $flag once; update $0"
  sed -i "s|\"$flag\", \"[^\"]*\"|\"$flag\", \"${BASE[busybox]}\"|" "$controller"
done

release_resolve \
  --image-label=org.opencontainers.image.source=https://$MODULE \
  --image-label=org.opencontainers.image.url=https://$MODULE \
  --image-label=org.opencontainers.image.title=pipeline \
  --image-label='org.opencontainers.image.description=Tekton Pipelines' \
  -R -f config/
release_finish
