#!/usr/bin/env bash
# Debian/Ubuntu packages that building and running CMDSR Studio need beyond Python:
#   binutils          objdump, which PyInstaller uses to find each library's dependencies
#                     (dpkg-deb for the .deb comes with dpkg itself)
#   libgl1 libegl1 libfontconfig1 libfreetype6 libxkbcommon0 libdbus-1-3 libglib2.0-0
#   fonts-dejavu-core what Qt (PySide6, frozen or not) loads from the system, offscreen too
#   libx11-xcb1 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-image0
#   libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0
#                     Qt's X11 (xcb) platform plugin: a real window, and the bundle copies
#                     these from the build machine, so a missing one is missing for users
#   xvfb              a virtual X server: the packaging test opens the installed app's window
# Installs only what is missing (so a prepared machine costs nothing) and needs root or sudo.
set -euo pipefail
packages=(
    binutils
    libgl1 libegl1 libfontconfig1 libfreetype6 libxkbcommon0 libdbus-1-3 libglib2.0-0
    fonts-dejavu-core
    libx11-xcb1 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-image0
    libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0
    xvfb
)
if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "install_system_deps: not a Debian-based system; install the equivalents of: ${packages[*]}" >&2
    exit 0
fi
missing=()
for pkg in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
echo "install_system_deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
