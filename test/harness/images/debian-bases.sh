#!/usr/bin/env bash
# Builds, from Debian packages, the base images Tekton Pipelines' release
# puts its binaries on, and the shell image its controller names; each is
# written as an OCI image layout under OUT/<name>/, its digest in
# OUT/<name>.digest. Registries that serve Tekton's own bases (ghcr.io,
# cgr.dev) are out of reach here, so each stands in for one of them:
#
#   static    tektoncd/plumbing's static-base (the default base of .ko.yaml,
#             also the Linux half of its "combined" base): Debian's CA bundle
#             and time zones, /etc/passwd and /etc/group with nonroot (65532),
#             /etc/nsswitch.conf; runs as 65532, as static-base does.
#   tini-git  tektoncd/plumbing's tini-git (the resolvers' base: the git
#             resolver runs git, the Deployment runs /sbin/tini): a Debian
#             minbase root file system with git and tini; runs as 65532.
#   busybox   cgr.dev/chainguard/busybox (the controller's -shell-image, for
#             init containers and scripts): Debian's busybox-static and its
#             applets, the CA bundle; runs as root, which Tekton's shell
#             image must allow.
#
# The CA bundle is the one Debian's ca-certificates makes in the debootstrap'ed
# root, never this machine's (which may hold a TLS-inspection CA).
#
# Usage: TOOLS_BIN=.tools/bin debian-bases.sh OUT   (as root: debootstrap, and
# files owned by root and by 65532 in the layers)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/harness/images/lib.sh
source "$here/lib.sh"

out=${1:?usage: debian-bases.sh OUT}
SUITE=bookworm
MIRROR=http://deb.debian.org/debian
PACKAGES=ca-certificates,tzdata,busybox-static,tini,git
PATH_ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CERTS_ENV=SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt

[ "$(id -u)" = 0 ] || die "debian-bases.sh runs as root (debootstrap, file owners in the layers)"
need_tool crane
command -v debootstrap >/dev/null || die "debootstrap is missing: apt-get install debootstrap"
arch=$(go_arch)
mkdir -p "$out"
tmp=$(mktemp -d)
cleanup() {
  stop_build_registry
  rm -rf "$tmp"
}
trap cleanup EXIT

log "debootstrap $SUITE ($PACKAGES) for the Tekton base images"
rootfs=$tmp/rootfs
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$MIRROR" \
  >"$tmp/debootstrap.log" 2>&1 || { tail -20 "$tmp/debootstrap.log" >&2; exit 1; }
# What went in, for the record next to the images.
dpkg-query --admindir="$rootfs/var/lib/dpkg" -W >"$out/packages.txt"
bundle=$rootfs/etc/ssl/certs/ca-certificates.crt
[ -s "$bundle" ] || die "$bundle is missing: ca-certificates did not configure"

# accounts DIR: the users and groups a distroless-style image has.
accounts() {
  local dir=$1
  mkdir -p "$dir/etc"
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
    'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
    'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$dir/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'nonroot:x:65532:' >"$dir/etc/group"
  # Go's resolver reads it: files first, then DNS.
  printf 'hosts: files dns\n' >"$dir/etc/nsswitch.conf"
  mkdir -p "$dir/tmp" "$dir/home/nonroot" "$dir/root"
  chmod 1777 "$dir/tmp"
  chmod 700 "$dir/root"
  chown 65532:65532 "$dir/home/nonroot"
}

# static
static=$tmp/static
mkdir -p "$static/etc/ssl/certs" "$static/usr/share"
accounts "$static"
cp "$bundle" "$static/etc/ssl/certs/"
cp -a "$rootfs/usr/share/zoneinfo" "$static/usr/share/"

# busybox: the static binary and a link for each applet, where busybox puts it.
busybox=$tmp/busybox
accounts "$busybox"
mkdir -p "$busybox/bin" "$busybox/sbin" "$busybox/usr/bin" "$busybox/usr/sbin" "$busybox/etc/ssl/certs"
cp "$rootfs/bin/busybox" "$busybox/bin/busybox"
cp "$bundle" "$busybox/etc/ssl/certs/"
applets=$("$busybox/bin/busybox" --list-full) || die "busybox --list-full failed"
for applet in $applets; do
  [ "$applet" = bin/busybox ] && continue
  mkdir -p "$(dirname "$busybox/$applet")"
  ln -s /bin/busybox "$busybox/$applet"
done
[ -L "$busybox/bin/sh" ] || die "busybox-static has no sh applet"

# tini-git: the root file system itself, without apt's downloads and lists,
# documentation and translations (as Debian's slim images), the files a
# container runtime provides, or the install's logs and ldconfig's cache (the
# only files that differ between two builds: without them the image is the
# same at every build from the same packages).
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
  "$rootfs"/usr/share/doc "$rootfs"/usr/share/man "$rootfs"/usr/share/info "$rootfs"/usr/share/locale \
  "$rootfs/etc/resolv.conf" "$rootfs/etc/hostname" "$rootfs/var/cache/ldconfig/aux-cache"
find "$rootfs/var/log" -type f -delete
printf 'nonroot:x:65532:65532:nonroot:/home/nonroot:/usr/sbin/nologin\n' >>"$rootfs/etc/passwd"
printf 'nonroot:x:65532:\n' >>"$rootfs/etc/group"
mkdir -p "$rootfs/home/nonroot"
chown 65532:65532 "$rootfs/home/nonroot"
# Where Tekton's resolvers Deployment runs it (/sbin is usr/sbin in bookworm).
ln -sf /usr/bin/tini "$rootfs/sbin/tini"

start_build_registry "$tmp/registry.log"
crane=$TOOLS_BIN/crane

# image NAME DIR CRANE-MUTATE-FLAGS...: one layer made from DIR, then the
# config; pulled back as an OCI layout (the registry is gone after the build).
image() {
  local name=$1 dir=$2
  shift 2
  local ref=$BUILD_REGISTRY/bases/$name
  # Reproducible layer: sorted, numeric owners, one fixed time.
  tar --sort=name --numeric-owner --mtime=@0 \
    --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' --exclude='./run/*' \
    -C "$dir" -cf "$tmp/$name.tar" .
  "$crane" append --oci-empty-base -f "$tmp/$name.tar" -t "$ref:layer" >/dev/null
  "$crane" mutate "$ref:layer" --set-platform "linux/$arch" \
    --label "org.opencontainers.image.description=$name base for Tekton, from Debian $SUITE packages" \
    "$@" -t "$ref:built" >/dev/null
  "$crane" pull --format=oci "$ref:built" "$out/$name"
  "$crane" digest "$ref:built" >"$out/$name.digest"
  log "base image $name: $(cat "$out/$name.digest")"
}

image static "$static" -e "$PATH_ENV" -e "$CERTS_ENV" --user 65532
image busybox "$busybox" -e "$PATH_ENV" -e "$CERTS_ENV" --cmd /bin/sh
image tini-git "$rootfs" -e "$PATH_ENV" -e "$CERTS_ENV" --user 65532 --entrypoint /sbin/tini,--
