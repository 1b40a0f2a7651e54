"""Fresh test machines for the gate, in two flavours (the test bed's python-flavoured
systemd-nspawn machines, `testbed.machines`):

- `plain`: the machine as it boots;
- `gpu`: the same machine plus what a GPU host shows a role without a real GPU: an
  `nvidia-smi` stand-in at /usr/bin/nvidia-smi (one H100-like GPU: `-L`, `--query-gpu=...`
  with `--format=csv[,noheader]`, `-pm 0|1` remembered until the machine stops) and the character device nodes /dev/nvidia0, /dev/nvidiactl and
  /dev/nvidia-uvm (major 195 and the uvm major, bound in from a host temp dir; opening them
  is not possible, seeing them is).

A fault found on only one flavour is reported as environment-specific.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import Iterator

from testbed import machines as testbed_machines

FLAVOURS = ("gpu", "plain")

NVIDIA_SMI_STAND_IN = r"""#!/bin/sh
# nvidia-smi stand-in of the idempotence gate's gpu flavour: one H100-like GPU, no driver behind
# it. Persistence mode is kept in /run (gone at reboot, as with the real driver), so
# `-pm 1` followed by a query reads back Enabled, as on a real GPU host.
state=/run/nvidia-smi-stand-in
persistence=Disabled
[ -f "$state/persistence" ] && persistence="$(cat "$state/persistence")"
query=""; header=1; pm=""
for arg in "$@"; do
  case "$arg" in
    --query-gpu=*) query="${arg#--query-gpu=}" ;;
    --format=*noheader*) header=0 ;;
    -L|--list-gpus) echo "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-00000000-0000-0000-0000-000000000000)"; exit 0 ;;
  esac
done
while [ $# -gt 0 ]; do
  case "$1" in -pm|--persistence-mode) pm="$2"; shift ;; esac
  shift
done
if [ -n "$pm" ]; then
  mkdir -p "$state"
  if [ "$pm" = 1 ]; then echo Enabled > "$state/persistence"; word=Enabled
  else echo Disabled > "$state/persistence"; word=Disabled; fi
  echo "$word persistence mode for GPU 00000000:00:00.0."
  echo "All done."
  exit 0
fi
if [ -n "$query" ]; then
  [ "$header" = 1 ] && echo "$query" | sed 's/,/, /g'
  out=""
  for field in $(echo "$query" | tr ',' ' '); do
    case "$field" in
      index) value=0 ;;
      name) value="NVIDIA H100 80GB HBM3" ;;
      driver_version) value=550.54.15 ;;
      persistence_mode) value="$persistence" ;;
      uuid) value=GPU-00000000-0000-0000-0000-000000000000 ;;
      pci.bus_id) value=00000000:00:00.0 ;;
      memory.total) value="81559 MiB" ;;
      temperature.gpu) value=35 ;;
      *) value="[N/A]" ;;
    esac
    out="${out:+$out, }$value"
  done
  echo "$out"
  exit 0
fi
cat <<'TABLE'
+-----------------------------------------------------------------------------+
| NVIDIA-SMI 550.54.15    Driver Version: 550.54.15    CUDA Version: 12.4     |
|   0  NVIDIA H100 80GB HBM3   On  | 00000000:00:00.0 Off |                    0 |
+-----------------------------------------------------------------------------+
TABLE
"""
# name -> (major, minor) as the NVIDIA driver creates them.
NVIDIA_NODES = {"nvidia0": (195, 0), "nvidiactl": (195, 255), "nvidia-uvm": (511, 0)}


def _gpu_binds(stand_in_dir: Path) -> tuple[str, ...]:
    smi = stand_in_dir / "nvidia-smi"
    smi.write_text(NVIDIA_SMI_STAND_IN)
    smi.chmod(0o755)
    binds = [f"--bind-ro={smi}:/usr/bin/nvidia-smi"]
    for name, (major, minor) in NVIDIA_NODES.items():
        node = stand_in_dir / name
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        binds.append(f"--bind={node}:/dev/{name}")
    return tuple(binds)


@contextlib.contextmanager
def fresh_machines(prefix: str, flavours: list[str], inventory: Path) -> Iterator[dict[str, str]]:
    """Boots one python-flavoured machine per flavour, writes an INI inventory for them (group
    `idempotence`, host var `idempotence_flavour`) and yields {host name: flavour}. Stops the
    machines and removes the stand-in files on the way out."""
    testbed_machines.ensure_host_tools()
    rootfs = testbed_machines.ensure_rootfs("python")
    stand_in_dir = Path(tempfile.mkdtemp(prefix="idem-gpu-", dir="/tmp"))
    started: list[tuple[testbed_machines.Machine, str]] = []
    try:
        for flavour in flavours:
            name = f"{prefix}-{flavour}"
            extra = ()
            if flavour == "gpu":
                flavour_dir = stand_in_dir / name
                flavour_dir.mkdir()
                extra = _gpu_binds(flavour_dir)
            machine = testbed_machines.start_machine(
                name, rootfs, extra_args=extra, ssh_port=testbed_machines.free_port()
            )
            started.append((machine, flavour))
        lines = ["[idempotence]"]
        for machine, flavour in started:
            begun = time.monotonic()
            machine.wait_until_booted()
            testbed_machines._wait_for_port(machine, timeout_s=30)  # noqa: SLF001
            machine.boot_s = time.monotonic() - begun
            lines.append(
                f"{testbed_machines.inventory_line(machine)} idempotence_flavour={flavour}"
            )
        inventory.write_text("\n".join(lines) + "\n")
        yield {machine.name: flavour for machine, flavour in started}
    finally:
        for machine, _ in started:
            machine.stop()
        shutil.rmtree(stand_in_dir, ignore_errors=True)
