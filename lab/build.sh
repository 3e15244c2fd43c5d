#!/usr/bin/env bash
# Build the lab images on the engine DOCKER_HOST points at: the shared packages image,
# then one small image per behaviour (a COPY of its own files on top). The base image
# compose-harden-lab/debian:bookworm must exist (.ci/e2e makes it with mmdebstrap).
set -euo pipefail
cd "$(dirname "$0")/images"
if ! docker image inspect compose-harden-lab/debian:bookworm >/dev/null 2>&1; then
	echo "lab: the base image compose-harden-lab/debian:bookworm is missing (see .ci/e2e)" >&2
	exit 2
fi
build() {
	local t0=$SECONDS
	local out
	if ! out=$(docker build -q --network host -t "compose-harden-lab/$1:1" -f "$1/Dockerfile" . 2>&1); then
		echo "$out" >&2
		echo "lab: building compose-harden-lab/$1:1 failed" >&2
		exit 1
	fi
	echo "lab: built compose-harden-lab/$1:1 in $((SECONDS - t0)) s"
}
build pkgs
for dir in */; do
	name=${dir%/}
	[ "$name" = pkgs ] || build "$name"
done
