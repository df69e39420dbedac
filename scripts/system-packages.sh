#!/bin/sh
# Install Debian packages the product or its tests need (fonts for posters, poppler, chromium).
# Runs apt-get directly as root, through sudo otherwise; says what to do when neither works.
set -e
if [ "$(id -u)" = "0" ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
  echo "Please install these Debian packages as root: $*" >&2; exit 1; fi
if ! $SUDO apt-get install -y -qq "$@" >/dev/null 2>&1; then
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq "$@" >/dev/null
fi
echo "installed: $*"
