#!/bin/sh
# waitdev DEV [SECONDS]: wait until block device DEV exists (default 10 s).
# Installed in the guest as /bin/waitdev. Exit 0 when present, 1 on timeout.
dev=$1
secs=${2:-10}
i=0
while [ ! -b "$dev" ]; do
	if [ "$i" -ge $((secs * 10)) ]; then
		echo "waitdev: $dev did not appear in ${secs}s" >&2
		ls /sys/block >&2
		exit 1
	fi
	sleep 0.1
	i=$((i + 1))
done
exit 0
