#!/usr/bin/env bash
# Smoke test of the production deploy: runs playbooks/production_deploy.yml against a fleet and
# checks the deployment artifact it wrote.
#
#   scripts/smoke_test_production.sh                      boot a test fleet (python-flavoured
#                                                         systemd-nspawn machines, tests/testbed)
#   scripts/smoke_test_production.sh --inventory FILE     deploy to an existing inventory
#
# Options:
#   --inventory FILE     deploy to these hosts instead of booting a test fleet
#   --hosts N            machines to boot for the test fleet (default 2)
#   --serial N           batch size of the rollout (default 1)
#   --artifact-dir DIR   where the deploy writes its artifacts (default ci-artifacts/deploy)
#   -- ARGS...           passed on to ansible-playbook (e.g. -e deploy_health_wait_timeout=30s)
#
# Exit codes:
#   0   the deploy passed and its artifact says so (every host healthy, no host left undeployed,
#       this commit, a `latest` link to this run's artifact)
#   1   the deploy failed (ansible-playbook exited non-zero); the artifact says why
#   2   the deploy passed but the artifact is missing or does not say so
#   3   the test fleet could not be started
#   64  bad usage
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
venv_bin="$repo/.venv/bin"
inventory=""
hosts=2
serial=1
artifact_dir="$repo/ci-artifacts/deploy"
extra=()

usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 64; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --inventory) inventory="${2:?--inventory needs a file}"; shift 2 ;;
        --hosts) hosts="${2:?--hosts needs a number}"; shift 2 ;;
        --serial) serial="${2:?--serial needs a number}"; shift 2 ;;
        --artifact-dir) artifact_dir="${2:?--artifact-dir needs a directory}"; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) usage ;;
        *) echo "smoke_test_production: unknown option '$1'" >&2; usage ;;
    esac
done
[[ "$hosts" =~ ^[1-9][0-9]*$ ]] || { echo "smoke_test_production: --hosts must be a positive number, got '$hosts'" >&2; exit 64; }
[[ "$serial" =~ ^[1-9][0-9]*%?$ ]] || { echo "smoke_test_production: --serial must be a number or a percentage, got '$serial'" >&2; exit 64; }

if [[ -z "$inventory" ]]; then
    # Boot the fleet, write its inventory, and run this script against it while it is up.
    export SMOKE_HOSTS="$hosts" SMOKE_SELF="$0" SMOKE_SERIAL="$serial" SMOKE_ARTIFACTS="$artifact_dir"
    exec "$venv_bin/python" - "${extra[@]}" <<'PY'
import os, subprocess, sys, tempfile
from pathlib import Path
repo = Path(os.environ["SMOKE_SELF"]).resolve().parent.parent
sys.path.insert(0, str(repo / "tests"))
try:
    from testbed.machines import free_port, inventory_line, ssh_fleet
    fleet = ssh_fleet(int(os.environ["SMOKE_HOSTS"]), prefix="smoke", flavour="python")
    machines = fleet.__enter__()
except Exception as error:  # the test bed's own errors name the machine and the step
    print(f"smoke_test_production: the test fleet did not start: {error}", file=sys.stderr)
    sys.exit(3)
try:
    with tempfile.TemporaryDirectory(prefix="smoke-inventory-") as tmp:
        inventory = Path(tmp) / "smoke" / "hosts.ini"
        (inventory.parent / "group_vars").mkdir(parents=True)
        # nspawn machines share the host's network: each app gets a port of its own.
        lines = ["[fleet]"] + [f"{inventory_line(m)} app_port={free_port()}" for m in machines]
        inventory.write_text("\n".join(lines) + "\n")
        # A busy machine may need longer than sshd's default grace time for a handshake.
        (inventory.parent / "group_vars" / "all.yml").write_text("---\nssh_hardening_login_grace_time: 120\n")
        rc = subprocess.run([os.environ["SMOKE_SELF"], "--inventory", str(inventory),
                             "--serial", os.environ["SMOKE_SERIAL"],
                             "--artifact-dir", os.environ["SMOKE_ARTIFACTS"], "--", *sys.argv[1:]]).returncode
finally:
    fleet.__exit__(None, None, None)
sys.exit(rc)
PY
fi

[[ -f "$inventory" || -d "$inventory" ]] || { echo "smoke_test_production: inventory '$inventory' not found" >&2; exit 64; }
mkdir -p "$artifact_dir"
export PATH="$venv_bin:$PATH" ANSIBLE_CONFIG="${ANSIBLE_CONFIG:-$repo/ansible.cfg}"
# The commit the deploy starts from (the checkout may move on while it runs).
commit="$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)"
echo "smoke_test_production: deploying to $inventory (serial $serial), artifacts in $artifact_dir"
if ! ansible-playbook -i "$inventory" "$repo/playbooks/production_deploy.yml" \
        -e "deploy_serial=$serial" -e "deploy_artifact_dir=$artifact_dir" "${extra[@]}"; then
    echo "smoke_test_production: the deploy failed; artifact: $artifact_dir/latest.json" >&2
    exit 1
fi

if ! python3 - "$artifact_dir" "$commit" <<'PY'
import json, os, sys
directory, commit = sys.argv[1], sys.argv[2]
latest = os.path.join(directory, "latest.json")
problems = []
try:
    with open(latest, encoding="utf-8") as handle:
        report = json.load(handle)
except (OSError, ValueError) as error:
    sys.exit(f"smoke_test_production: no readable artifact at {latest}: {error}")
deployment = report.get("deployment") or {}
if not os.path.islink(latest):
    problems.append("latest.json is not a link to the run's artifact")
elif os.path.basename(os.readlink(latest)) != f"{report.get('run_id')}.json":
    problems.append(f"latest.json points to {os.readlink(latest)}, not to run {report.get('run_id')}")
if report.get("status") != "pass":
    problems.append(f"status is {report.get('status')!r}, failures: {report.get('failures')}")
if not report.get("complete"):
    problems.append("the report is not complete")
if report.get("not_deployed"):
    problems.append(f"hosts not deployed: {report['not_deployed']}")
if deployment.get("git_commit") != commit:
    problems.append(f"git commit {deployment.get('git_commit')!r}, expected {commit!r}")
for key in ("run_id", "inventory", "started_at", "ended_at"):
    if not deployment.get(key):
        problems.append(f"deployment.{key} is missing")
bad = [h for h, e in (report.get("hosts") or {}).items() if e.get("status") != "pass"]
if bad or not report.get("hosts"):
    problems.append(f"hosts not passing: {bad or 'none listed'}")
if problems:
    sys.exit("smoke_test_production: artifact check failed:\n  " + "\n  ".join(problems))
print(f"smoke_test_production: artifact OK: run {report['run_id']}, {report['hosts_total']} hosts pass, "
      f"{len(report.get('batches') or [])} batches, commit {commit[:12]}")
PY
then
    exit 2
fi
