#!/usr/bin/env bash
# Make sure Node can get a WebGPU adapter through Dawn; install the software Vulkan driver if not.
# Idempotent: when an adapter is already there it only prints it.
#
#   bash scripts/setup.sh          # check, install if needed, verify
#   KINDLING_SETUP_QUIET=1 ...     # print only on change or failure
set -u
cd "$(dirname "$0")/.."

: "${XDG_RUNTIME_DIR:=/tmp/kindling-xdg-$(id -u)}"
export XDG_RUNTIME_DIR
mkdir -p "$XDG_RUNTIME_DIR" 2>/dev/null && chmod 700 "$XDG_RUNTIME_DIR" 2>/dev/null

probe() {
  local o rc
  o=$(node --import tsx scripts/probe-adapter.ts 2>&1); rc=$?
  # Dawn prints harmless "artificially reduced" limit warnings on some drivers.
  echo "$o" | grep -v 'artificially reduced'
  # Judge by what the probe printed: Dawn occasionally aborts while the process exits, after the check.
  if echo "$o" | grep -q '^WebGPU adapter: ' && ! echo "$o" | grep -q 'FAILED'; then return 0; fi
  return $(( rc == 0 ? 1 : rc ))
}

say() { [ "${KINDLING_SETUP_QUIET:-0}" = 1 ] || echo "$@"; }

if out=$(probe 2>&1); then
  say "$out"
  exit 0
fi
echo "setup: no WebGPU adapter yet ($(echo "$out" | tail -n 1))"

# What to install: libvulkan1 (the loader) and Mesa's Vulkan drivers (lavapipe, the software driver)
# at version 24 or newer. Debian 12's own Mesa 22 lacks features Dawn requires
# ("shaderUniform*ArrayDynamicIndexing required"), so on bookworm take Mesa from bookworm-backports.
manual_help() {
  cat >&2 <<'TXT'
setup: kindling needs a WebGPU adapter. Dawn could not find one.
  - On a machine with a GPU: install its Vulkan driver (NVIDIA driver, or Mesa's radv/anv) and libvulkan1.
  - On a CPU-only machine: install the software Vulkan driver lavapipe from Mesa >= 24:
      Debian 12:  bash scripts/apt-mirror.sh bookworm > /etc/apt/sources.list.d/backports.list
                  (a bookworm-backports line for the mirror in /etc/apt/sources.list(.d); or write
                   one for your mirror by hand)
                  apt-get update
                  apt-get install -y -t bookworm-backports mesa-vulkan-drivers libvulkan1
      Debian 13 / Ubuntu 24.04+:  apt-get install -y mesa-vulkan-drivers libvulkan1
  Then run: npm run setup
TXT
}

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1 || [ ! -r /etc/os-release ]; then
  manual_help
  exit 1
fi

. /etc/os-release
export DEBIAN_FRONTEND=noninteractive
apt_target=()
if [ "${ID:-}" = debian ] && [ "${VERSION_CODENAME:-}" = bookworm ]; then
  list=/etc/apt/sources.list.d/kindling-backports.list
  if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    # Backports from the mirror the machine already uses (its own mirror or proxy included).
    if ! lines=$(bash scripts/apt-mirror.sh bookworm); then
      echo "setup: found no Debian mirror for bookworm in /etc/apt/sources.list or /etc/apt/sources.list.d/" >&2
      manual_help
      exit 1
    fi
    echo "setup: adding bookworm-backports (Mesa >= 24) in $list, from the mirror in /etc/apt"
    printf '%s\n' "$lines" > "$list"
  fi
  apt_target=(-t bookworm-backports)
fi
echo "setup: installing libvulkan1 and mesa-vulkan-drivers ${apt_target[*]:-}"
apt-get update -q >/dev/null || { echo "setup: apt-get update failed" >&2; manual_help; exit 1; }
if ! apt-get install -y -q "${apt_target[@]}" mesa-vulkan-drivers libvulkan1 >/tmp/kindling-apt.log 2>&1; then
  tail -n 20 /tmp/kindling-apt.log >&2
  manual_help
  exit 1
fi

if out=$(probe 2>&1); then
  echo "$out"
  exit 0
fi
echo "$out" >&2
manual_help
exit 1
