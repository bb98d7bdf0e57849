#!/bin/sh
# Smallest VM test: the image boots, the binaries' libraries resolve, /dev/fuse exists.
set -e
uname -a
[ -c /dev/fuse ] || { echo "/dev/fuse missing" > /run/vm-fail-reason; exit 1; }
netmapd --version
nm-client errno --list | head -n 3
