#!/bin/sh
# ucarp runs this when the node stops being master (and, with --shutdown,
# when ucarp exits), as
#   vip-down.sh <interface> <vip> <xparam>
# It removes the VIP from the real interface named by --xparam.
set -eu
vip="$2"
dev="${3:?start ucarp with --xparam=<real interface>, e.g. --xparam=eth0}"
prefix="${VIP_PREFIX:-32}"
# Idempotent: a backup at start-up has no VIP to remove.
ip addr del "$vip/$prefix" dev "$dev" 2>/dev/null || true
