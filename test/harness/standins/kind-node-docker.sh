#!/bin/sh
# Stand-in for kind's node image, as the `docker` kind finds on PATH. Every
# command goes to the real Docker engine, except that kindest/node (on Docker
# Hub, out of reach here) is swapped for $KIND_NODE_STAND_IN, a local image
# that only sleeps. The node "boots" (its log gives the line kind waits for),
# and then never answers a command kind runs in it: each `docker exec` into it
# lasts as long as the node. So the real kind creates real node containers on
# a real `kind` network, and stays in `kind create cluster` until it is
# stopped: a cluster half-made, as when a run is stopped during it. (Without
# the boot line kind gives up after 30 s, too soon for a slow machine to get
# the run half-way.) Nothing here can make a cluster that works;
# test/harness/kind-node.ts uses it.
set -eu

# is_stand_in NAME: NAME is a node container running the stand-in image.
is_stand_in() {
  [ "$("$REAL_DOCKER" inspect --format '{{.Config.Image}}' "$1" 2>/dev/null)" = "$KIND_NODE_STAND_IN" ]
}

case "$*" in
  logs\ -f\ *)
    node=$3
    if is_stand_in "$node"; then
      # The line systemd logs once booted, which kind waits for.
      echo 'Reached target multi-user.target - Multi-User System.'
      exec "$REAL_DOCKER" wait "$node" >/dev/null
    fi
    exec "$REAL_DOCKER" "$@"
    ;;
  exec\ *)
    # kind runs `docker exec --privileged [-i] [-e VAR=VALUE]... NODE COMMAND...`:
    # the node is the first word after the options.
    node=$(printf '%s\n' "$@" | awk 'NR == 1 || skip { skip = 0; next } $0 == "-e" { skip = 1; next } /^-/ { next } { print; exit }')
    if [ -n "$node" ] && is_stand_in "$node"; then
      "$REAL_DOCKER" wait "$node" >/dev/null 2>&1 || true
      echo "kind-node-docker stand-in: node $node is gone" >&2
      exit 1
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
