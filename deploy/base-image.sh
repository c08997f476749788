#!/usr/bin/env bash
# Build the Debian base image from Debian's own packages (debootstrap + podman import), for machines
# that cannot reach a public image registry. Elsewhere, pass --build-arg BASE_IMAGE=debian:bookworm-slim.
#   deploy/base-image.sh [image-name]     (default: localhost/backoffice-base:bookworm)
set -euo pipefail
IMAGE=${1:-localhost/backoffice-base:bookworm}
SUITE=${DEBIAN_SUITE:-bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${BASE_IMAGE_CACHE:-/var/tmp/backoffice-base-$SUITE.tar}

if podman image exists "$IMAGE"; then
  echo "base image $IMAGE exists"
  exit 0
fi
if [ ! -s "$CACHE" ]; then
  root=$(mktemp -d /var/tmp/backoffice-rootfs.XXXXXX)
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$root" "$MIRROR" >/dev/null
  # The same sources a stock Debian image has, and no package caches in the layer.
  echo "deb $MIRROR $SUITE main" > "$root/etc/apt/sources.list"
  echo "deb $MIRROR $SUITE-updates main" >> "$root/etc/apt/sources.list"
  echo "deb http://deb.debian.org/debian-security $SUITE-security main" >> "$root/etc/apt/sources.list"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -cf "$CACHE.partial" .
  mv "$CACHE.partial" "$CACHE"
fi
podman import --change 'CMD ["/bin/bash"]' "$CACHE" "$IMAGE" >/dev/null
echo "base image $IMAGE imported from $CACHE"
