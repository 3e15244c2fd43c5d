#!/bin/sh
# compose-harden lab: the root helper; makes the runtime dir and hands it to app.
set -e
mkdir -p /run/lab-sudo
chown app:app /run/lab-sudo
