#!/bin/sh
# Stand-in for kind's node image, as the `docker` kind finds on PATH. Every
# command goes to the real Docker engine, except that kindest/node (on Docker
# Hub, out of reach here) is swapped for $KIND_NODE_STAND_IN, a local image
# that only sleeps, and that its log is read as "nothing yet" for as long as
# the node exists. So the real kind creates real node containers on a real
# `kind` network and waits for them to boot, which they never do: a cluster
# half-made, as when a run is stopped during `kind create cluster`. Nothing
# here can make a cluster that works; test/harness/kind-node.ts uses it.
set -eu
case "$*" in
  logs\ -f\ *)
    # kind waits for systemd's boot line; the stand-in never prints one.
    node=$3
    if [ "$("$REAL_DOCKER" inspect --format '{{.Config.Image}}' "$node" 2>/dev/null)" = "$KIND_NODE_STAND_IN" ]; then
      exec "$REAL_DOCKER" wait "$node"
    fi
    exec "$REAL_DOCKER" "$@"
    ;;
  *kindest/node:*) ;;
  *) exec "$REAL_DOCKER" "$@" ;;
esac
case "$1" in
  inspect) exec "$REAL_DOCKER" inspect --type=image "$KIND_NODE_STAND_IN" ;;
  run)
    # kind's `docker run` ends with the image; the stand-in goes there, with a
    # command. This machine's runc cannot start privileged containers, and a
    # node that only sleeps needs no privilege.
    n=$#
    i=0
    for arg in "$@"; do
      i=$((i + 1))
      shift
      if [ "$i" -lt "$n" ] && [ "$arg" != --privileged ]; then set -- "$@" "$arg"; fi
    done
    exec "$REAL_DOCKER" "$@" "$KIND_NODE_STAND_IN" sleep infinity
    ;;
esac
echo "kind-node-docker stand-in: does not know: docker $*" >&2
exit 1
