# shellcheck shell=bash
# Helpers shared by the image and release builders (sourced, not run).
# The builders run from scripts/test-tools.sh, with .tools/bin built first.

: "${TOOLS_BIN:?set TOOLS_BIN to the folder of the test tools (.tools/bin)}"

log() { printf 'test-tools: %s\n' "$*" >&2; }
die() { printf 'test-tools: error: %s\n' "$*" >&2; exit 1; }

# need_tool NAME: a tool scripts/test-tools.sh puts in .tools/bin.
need_tool() {
  [ -x "$TOOLS_BIN/$1" ] || die "$1 is missing from $TOOLS_BIN: run \`bash scripts/test-tools.sh\`"
}

# start_build_registry LOG: go-containerregistry's in-memory registry on a free
# loopback port, for the length of one build (ko and crane read and write
# images through a registry only). Sets BUILD_REGISTRY (127.0.0.1:PORT, plain
# HTTP for go-containerregistry) and BUILD_REGISTRY_PID; the caller stops it.
start_build_registry() {
  local log=$1 line port=''
  need_tool registry
  # Its log is read until it names its port, then drained into LOG (every
  # request logs a line: an undrained pipe would stall it).
  exec {registry_out}< <(exec "$TOOLS_BIN/registry" --port 0 2>&1)
  BUILD_REGISTRY_PID=$!
  while IFS= read -r -t 20 -u "$registry_out" line; do
    printf '%s\n' "$line" >>"$log"
    if [[ $line =~ serving\ on\ port\ ([0-9]+) ]]; then
      port=${BASH_REMATCH[1]}
      break
    fi
  done
  [ -n "$port" ] || die "the build registry did not report its port (log: $log)"
  cat <&"$registry_out" >>"$log" &
  exec {registry_out}<&-
  # shellcheck disable=SC2034 # read by the builders that source this
  BUILD_REGISTRY=127.0.0.1:$port
}

stop_build_registry() {
  if [ -n "${BUILD_REGISTRY_PID:-}" ]; then kill "$BUILD_REGISTRY_PID" 2>/dev/null || true; fi
  BUILD_REGISTRY_PID=''
}

# go_arch: the platform images are built for, the machine's own (Go's name).
go_arch() {
  case "$(uname -m)" in
    x86_64 | amd64) echo amd64 ;;
    aarch64 | arm64) echo arm64 ;;
    *) die "unsupported machine $(uname -m)" ;;
  esac
}

