#!/usr/bin/env bash
# Builds the local stand-in images the container tests run against, without
# any registry: a root filesystem holding one host program and the shared
# libraries it links (ldd), imported with `docker import`.
#
#   scripts/standin-images.sh [MQTT_CHAOS_BINARY]
#
# * mqtt-chaos/mosquitto-standin:local  the host's Mosquitto (Debian's
#   package), listening on 1883, configured by a file mounted at
#   /mosquitto/config/mosquitto.conf (a default one is built in); stands in
#   for emqx/emqx where that image cannot be pulled.
# * mqtt-chaos/toxiproxy-standin:local  `mqtt-chaos proxy-server` (the
#   Toxiproxy-compatible API over the embedded fault engine) on 0.0.0.0:8474;
#   stands in for ghcr.io/shopify/toxiproxy.
# * mqtt-chaos/mqtt-chaos:local  the harness itself (ENTRYPOINT mqtt-chaos),
#   for shards run by an orchestrator (Docker Swarm, Kubernetes; docs/shards.md).
#
# MQTT_CHAOS_BINARY defaults to target/release/mqtt-chaos, then
# target/debug/mqtt-chaos. Images are rebuilt only when their program
# changed (the program's sha256 is kept as a label).
set -euo pipefail

MOSQUITTO_IMAGE="${MQTT_CHAOS_MOSQUITTO_STANDIN:-mqtt-chaos/mosquitto-standin:local}"
PROXY_IMAGE="${MQTT_CHAOS_TOXIPROXY_STANDIN:-mqtt-chaos/toxiproxy-standin:local}"
HARNESS_IMAGE="${MQTT_CHAOS_HARNESS_IMAGE:-mqtt-chaos/mqtt-chaos:local}"

here="$(cd "$(dirname "$0")/.." && pwd)"
bin="${1:-}"
if [ -z "$bin" ]; then
  for c in "$here/target/release/mqtt-chaos" "$here/target/debug/mqtt-chaos"; do
    if [ -x "$c" ]; then bin="$c"; break; fi
  done
fi
[ -n "$bin" ] && [ -x "$bin" ] || { echo "standin-images: no mqtt-chaos binary (build it, or pass its path)" >&2; exit 2; }
mosquitto="$(command -v mosquitto || true)"
[ -n "$mosquitto" ] || mosquitto=/usr/sbin/mosquitto
[ -x "$mosquitto" ] || { echo "standin-images: mosquitto is not installed (apt-get install -y mosquitto)" >&2; exit 2; }
command -v docker >/dev/null || { echo "standin-images: docker is not installed" >&2; exit 2; }

# copy PROGRAM and its libraries into ROOT
copy_with_libs() {
  local prog="$1" root="$2" dest="$3"
  mkdir -p "$root$(dirname "$dest")"
  cp -L "$prog" "$root$dest"
  ldd "$prog" | grep -o '/[^ ]*' | sort -u | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}

# build IMAGE from a root made by FILL, unless its program's hash is unchanged
build() {
  local image="$1" prog="$2" fill="$3"; shift 3
  local sum
  sum="$(sha256sum "$prog" | cut -c1-64)"
  if [ "$(docker image inspect -f '{{ index .Config.Labels "mqtt-chaos.program-sha256" }}' "$image" 2>/dev/null || true)" = "$sum" ]; then
    echo "standin-images: $image is up to date"
    return
  fi
  local root
  root="$(mktemp -d)"
  trap 'rm -rf "$root"' RETURN
  mkdir -p "$root/etc" "$root/tmp"
  chmod 1777 "$root/tmp"
  printf 'root:x:0:0:root:/root:/bin/false\nmosquitto:x:1883:1883::/tmp:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nmosquitto:x:1883:\n' >"$root/etc/group"
  "$fill" "$root" "$prog"
  tar -C "$root" -c . | docker import \
    --change "LABEL mqtt-chaos.program-sha256=$sum" \
    --change "LABEL org.opencontainers.image.description=\"mqtt-chaos stand-in built from $(basename "$prog")\"" \
    "$@" - "$image" >/dev/null
  echo "standin-images: built $image from $prog"
}

fill_mosquitto() {
  local root="$1" prog="$2"
  copy_with_libs "$prog" "$root" /usr/sbin/mosquitto
  mkdir -p "$root/mosquitto/config" "$root/mosquitto/data"
  chmod 777 "$root/mosquitto/data"
  printf 'listener 1883 0.0.0.0\nallow_anonymous true\n' >"$root/mosquitto/config/mosquitto.conf"
}

fill_proxy() {
  local root="$1" prog="$2"
  copy_with_libs "$prog" "$root" /usr/local/bin/mqtt-chaos
}

build "$MOSQUITTO_IMAGE" "$mosquitto" fill_mosquitto \
  --change 'EXPOSE 1883' \
  --change 'ENTRYPOINT ["/usr/sbin/mosquitto"]' \
  --change 'CMD ["-c", "/mosquitto/config/mosquitto.conf"]'
build "$PROXY_IMAGE" "$bin" fill_proxy \
  --change 'EXPOSE 8474' \
  --change 'ENTRYPOINT ["/usr/local/bin/mqtt-chaos", "proxy-server"]' \
  --change 'CMD ["--listen", "0.0.0.0:8474"]'
build "$HARNESS_IMAGE" "$bin" fill_proxy \
  --change 'ENTRYPOINT ["/usr/local/bin/mqtt-chaos"]' \
  --change 'CMD ["--help"]'
