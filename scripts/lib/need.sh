# shellcheck shell=bash
# Sourced by the packaging scripts. `need COMMAND DEBIAN-PACKAGE` installs the package with
# apt-get when the command is missing (the project never asks a user to install by hand); the
# package lists are refreshed only when the first attempt fails, e.g. on a fresh machine.
need() {
    command -v "$1" >/dev/null 2>&1 && return 0
    printf '%s: installing the Debian package %s (for %s)\n' "${0##*/}" "$2" "$1" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "$2" >&2 || { apt-get update -q >&2 && apt-get install -y -q "$2" >&2; }
}
