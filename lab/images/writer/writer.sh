#!/bin/sh
# compose-harden lab: a root process that never drops and appends a heartbeat to
# /srv/spool, a directory owned by uid 1000 (written for the lab).
set -e
trap 'echo "lab-writer: stopping"; exit 0' TERM INT
while :; do
	date +%s >> /srv/spool/heartbeat
	sleep 2 &
	wait $!
done
