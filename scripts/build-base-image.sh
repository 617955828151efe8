#!/usr/bin/env bash
# Builds the local image `conveyor/busybox` from Debian's static busybox, without any registry.
# Idempotent: an image already built from the same busybox binary is kept as it is.
set -euo pipefail

IMAGE="${CONVEYOR_BASE_IMAGE:-conveyor/busybox}"
BUSYBOX="${BUSYBOX:-/bin/busybox}"

if [[ ! -x "$BUSYBOX" ]] || ! file -L "$BUSYBOX" 2>/dev/null | grep -q 'statically linked'; then
  echo "build-base-image: $BUSYBOX is not a static busybox; install it with: apt-get install -y busybox-static" >&2
  exit 1
fi

digest=$(sha256sum "$BUSYBOX" | cut -c1-16)
current=$(docker image inspect --format '{{ index .Config.Labels "conveyor.busybox" }}' "$IMAGE" 2>/dev/null || true)
if [[ "$current" == "$digest" ]]; then
  echo "build-base-image: $IMAGE is up to date (busybox $digest)"
  exit 0
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,tmp,etc,workspace,root,home}
chmod 1777 "$root/tmp"
cp "$BUSYBOX" "$root/bin/busybox"
# Every applet becomes a link, so `sh`, `sha256sum`, `sleep`... resolve on PATH.
for applet in $("$BUSYBOX" --list); do
  [[ -e "$root/bin/$applet" ]] || ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"

tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["sh"]' \
  --change "LABEL conveyor.busybox=$digest" \
  - "$IMAGE" >/dev/null
echo "build-base-image: built $IMAGE (busybox $digest)"
