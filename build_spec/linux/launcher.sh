#!/bin/sh
# CMDSR Studio launcher (/usr/bin/cmdsr-studio): starts the bundle installed under
# /opt/cmdsr-studio. The path is taken relative to this script, so a package unpacked into
# another root (dpkg -x, as the packaging test does) runs its own copy.
here="$(dirname "$(readlink -f "$0")")"
exec "$here/../../opt/cmdsr-studio/cmdsr-studio" "$@"
