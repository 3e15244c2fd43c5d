#!/bin/sh
# Run in the root of one repository (by multi-gitter, git-xargs, turbolift …):
# hardens every compose file in place and writes the pull-request body.
compose-harden fix --quiet --pr-body "${PR_BODY:-/tmp/compose-harden-pr.md}" .
status=$?
# 2 means some file could not be processed: the others are fixed; keep the change.
if [ "$status" -eq 2 ]; then
  echo "compose-harden: some files were skipped; see the pull-request body" >&2
fi
exit 0
