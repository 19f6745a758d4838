#!/usr/bin/env bash
# The Debian packages profilebot needs beyond Python's: Pango (and HarfBuzz's subsetter) for
# WeasyPrint, which makes `profile card --format pdf`; a font; poppler's pdftotext and pdfinfo,
# which the card's tests read PDFs with. Idempotent: installs only what is missing.
#
#   bash .ci/system-packages.sh            # `make setup`: without apt-get or root, say what to
#                                          # install and carry on (exit 0)
#   bash .ci/system-packages.sh --require  # CI: fail when they cannot be installed
set -euo pipefail

packages=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core poppler-utils)
require=0
[ "${1:-}" = "--require" ] && require=1

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    echo "system-packages.sh: no apt-get here; PDF cards need Pango (see README, Set-up)" >&2
    exit "$require"
fi

missing=()
for package in "${packages[@]}"; do
    installed "$package" || missing+=("$package")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "system-packages.sh: missing ${missing[*]}; install them with:" \
        "sudo apt-get install -y ${missing[*]}" >&2
    exit "$require"
fi

export DEBIAN_FRONTEND=noninteractive
echo "system-packages.sh: installing ${missing[*]}" >&2
log="$(mktemp -t system-packages.XXXXXX.log)"
if ! { "${as_root[@]}" apt-get install -y "${missing[@]}" || {
    "${as_root[@]}" apt-get update && "${as_root[@]}" apt-get install -y "${missing[@]}"
}; } </dev/null >"$log" 2>&1; then
    echo "system-packages.sh: apt-get could not install ${missing[*]}:" >&2
    tail -n 20 "$log" >&2
    exit "$require"
fi
