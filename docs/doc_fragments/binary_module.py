"""Documentation shared by every binary module of this repository (health_check, secrets_gate,
idempotence_probe): how they run, on which hosts, and the attributes they all have.

In this repository the sidecar docs name it `binary_module` (ansible.cfg's
`doc_fragment_plugins` points here); scripts/build_collection.py ships it as
`plugins/doc_fragments/binary_module.py` and rewrites the name to
`fleetverify.ops.binary_module` in the collection's module docs."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options: {}
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    support: full
    details:
      - The action plugin of the same name picks the binary for the host's architecture (from
        gathered facts, else one C(uname -m) per host), keeps it on the host under a
        content-addressed path and sends it again only when it changed.
  async:
    description: Supports being used with the C(async) keyword.
    support: partial
    details:
      - With C(async), the action plugin hands the binary for the host's architecture to
        Ansible's own async path (sent to the remote tmp dir with every run, not cached),
        whose C(async_wrapper) and C(async_status) are Python modules; so an C(async) task
        needs Python on the host. On a host without Python, bound a run with the module's own
        time limits and the task's C(timeout) instead (the module answers C(SIGTERM) with one
        failed result).
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
notes:
  - A binary module, a static Linux executable (musl) for x86_64 and aarch64 hosts; the target
    host needs no Python, so it works with C(gather_facts=false). On any other architecture the
    task fails with a message naming it.
  - The binary is cached on the host under C(/var/cache/fleetverify.ops/<module>-<sha256>)
    (C(~/.cache/fleetverify.ops) for a non-root user); a read-only or C(noexec) cache falls back
    to Ansible's usual transfer with a warning.
  - Parameters are validated by the module itself; an error names the parameter and what was
    expected. Booleans accept Ansible's spellings (C(yes)/C(no)/C(true)/C(false)/C(on)/C(off)/C(1)/C(0)).
  - Runs by hand as C(MODULE ARGS.json); C(MODULE --help) describes it and C(MODULE --parameters)
    prints its argument spec as JSON.
"""
