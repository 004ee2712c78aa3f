#!/usr/bin/env bash
# Makes an ordinary user ready for rootless tsfig (as root; idempotent): the user itself when missing (a system user
# with a home, for tests: tsfig-rl), and a subordinate uid/gid range of 65536 ids in /etc/subuid and /etc/subgid when
# it has none, taken after every range already there.
#   scripts/rootless-user.sh NAME
set -euo pipefail
name=${1:?usage: scripts/rootless-user.sh NAME}
if [ "$(id -u)" != 0 ]; then
  echo "rootless-user: run as root (it edits /etc/subuid and /etc/subgid)" >&2
  exit 77
fi
id -u "$name" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$name"
for file in /etc/subuid /etc/subgid; do
  touch "$file"
  if ! grep -q "^$name:" "$file"; then
    # the next free range: after the highest end of the ranges already given (100000 at least)
    start=$(awk -F: 'BEGIN { end = 100000 } { if ($2 + $3 > end) end = $2 + $3 } END { print end }' "$file")
    flag=--add-subuids
    [ "$file" = /etc/subgid ] && flag=--add-subgids
    usermod "$flag" "$start-$((start + 65535))" "$name"
  fi
done
