#!/bin/sh
# ucarp runs this when the node becomes master, as
#   vip-up.sh <interface> <vip> <xparam>
# The interface is the relay's tap (mcast0), which only carries ucarp's
# adverts; clients reach the VIP on the real interface, so ucarp is started
# with --xparam=<real interface> and the VIP goes there, announced there by
# a gratuitous ARP. VIP_PREFIX sets the prefix length (default 32: no
# subnet route is added or removed with the VIP).
set -eu
vip="$2"
dev="${3:?start ucarp with --xparam=<real interface>, e.g. --xparam=eth0}"
prefix="${VIP_PREFIX:-32}"
# Idempotent: an address left over from a crash is not an error.
ip addr replace "$vip/$prefix" dev "$dev"
# In the background: ucarp waits for this script, and its adverts must not
# wait for the ARP announcements.
arping -q -U -c 3 -I "$dev" "$vip" >/dev/null 2>&1 </dev/null &
