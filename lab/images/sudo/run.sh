#!/bin/sh
# compose-harden lab: as app, prepare through sudo, then keep a ready marker fresh.
set -e
sudo -n /usr/local/sbin/lab-prepare
trap 'echo "lab-sudo: stopping"; exit 0' TERM INT
while :; do
	date +%s > /run/lab-sudo/ready
	sleep 2 &
	wait $!
done
