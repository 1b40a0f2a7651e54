"""The idempotence gate behind scripts/verify_idempotence.sh.

For each role, on fresh test machines (or on the hosts of an inventory given with `-i`):

1. converge the role (run 1), recording every task result with our callback plugin
   (`callback_plugins/idempotence_recorder.py`: role, task, file:line, host, changed, and the
   paths, units, packages, users, groups and sysctl keys the task named);
2. snapshot the watch set with the `idempotence_probe` module: what run 1 named, the role's
   declared extra state (`meta/idempotence.yml`) and `--watch` paths;
3. converge again (runs 2..N) and compare each time with the snapshot;
4. judge: not idempotent when a repeat run reports a changed task or the state drifted.

Modules: `cli` (options, progress, exit status), `gate` (one role, start to verdict),
`records` (reading the callback's records), `watch` (watch set and declared ignores),
`machines` (fresh test machines of the two flavours), `ansible` (running ansible-playbook
under a time budget), `evidence` (role JSON, summary, history, baseline comparison).

Documentation: docs/idempotence-gate.md.
"""

SCHEMA_VERSION = 1
