#!/usr/bin/env bash
# The idempotence gate: converge each role twice (or --runs N times) on fresh test machines,
# snapshot the state the first run touched, compare after the repeat runs, and fail when a
# repeat run reports a change or the state drifted. The work is done by scripts/idempotence/
# (a Python package); this wrapper only finds .venv and the repository.
#
#   scripts/verify_idempotence.sh --help
#   scripts/verify_idempotence.sh                          every role under roles/core
#   scripts/verify_idempotence.sh core/sysctl --jobs 2     the roles named
#   scripts/verify_idempotence.sh -i inventory/localhost.yml --roles-path DIR my_role
#
# Documentation: docs/idempotence-gate.md
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="$repo_root/.venv/bin/python"
if [[ ! -x "$python" ]]; then
    echo "verify_idempotence: $python is missing: run \`make bootstrap\` first" >&2
    exit 2
fi
# Ansible's tools come from .venv too.
export PATH="$repo_root/.venv/bin:$PATH"
export PYTHONPATH="$repo_root/scripts${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" -m idempotence "$@"
