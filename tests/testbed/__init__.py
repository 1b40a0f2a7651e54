"""The project's test bed: real machines and engines for the tests, the benchmarks and the
idempotence gate.

- `testbed.machines`: Debian machines booted with systemd-nspawn from a cached rootfs
  (`booted()`, `ssh_fleet()`, `ssh_command()`).
- `testbed.dockerd`: a private dockerd with the test containers (`private_docker_engine()`).
- `testbed.mirror`: the Debian mirror this machine's apt uses.
- `testbed.errors`: the exceptions all of them raise (`TestbedError` and its kinds).

Installed into .venv as an editable package (pyproject.toml at the repository root), so scripts
import it without editing sys.path; under pytest, tests/ is on sys.path anyway.
"""
