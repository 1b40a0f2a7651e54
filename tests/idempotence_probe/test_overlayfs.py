"""idempotence_probe on overlayfs, the root file system of containers and nspawn machines: a
file from a lower layer reports the lower layer's device, not its directory's. With the
default `one_file_system: true` such files must still be recorded and hashed, not taken for
mount points (which would make every compare on a container report "no drift" unseen)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import ROLE_LIBRARY

PROBE = ROLE_LIBRARY / "idempotence_probe"


def test_files_from_an_overlay_lower_layer_are_recorded_not_taken_for_mount_points(tmp_path):
    lower = tmp_path / "lower"
    (lower / "etc" / "app").mkdir(parents=True)
    (lower / "etc" / "app" / "app.conf").write_text("port = 8080\n")
    merged = tmp_path / "merged"
    merged.mkdir()
    store = tmp_path / "store"
    args = tmp_path / "args.json"
    args.write_text(json.dumps({
        "state": "snapshot", "name": "overlay", "snapshot_dir": str(store),
        "paths": [str(merged / "etc")],
    }))
    # Upper and work dirs on a tmpfs, the lower dir on the test's own file system: two devices,
    # as for an nspawn machine booted with --volatile=overlay. A private mount namespace keeps
    # the mounts away from the host and removes them with the process.
    script = f"""
        set -e
        mount -t tmpfs tmpfs {tmp_path}/upperfs
        mkdir {tmp_path}/upperfs/upper {tmp_path}/upperfs/work
        mount -t overlay overlay -o lowerdir={lower},upperdir={tmp_path}/upperfs/upper,workdir={tmp_path}/upperfs/work {merged}
        stat -c '%d %n' {merged}/etc/app {merged}/etc/app/app.conf >&2
        exec {PROBE} {args}
    """
    (tmp_path / "upperfs").mkdir()
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    devices = {line.split()[1]: line.split()[0] for line in proc.stderr.splitlines() if " /" in line}
    conf = f"{merged}/etc/app/app.conf"
    assert devices.get(conf) != devices.get(f"{merged}/etc/app"), (
        f"the overlay did not show the lower layer's device for a file: {devices}")

    result = json.loads(proc.stdout)
    assert result["failed"] is False, result
    entries = [json.loads(line) for line in next(store.glob("overlay*")).read_text().splitlines()]
    recorded = {e.get("path"): e for e in entries if e.get("section") == "path"}
    assert recorded[conf]["type"] == "file", recorded[conf]
    assert recorded[conf].get("sha256"), recorded[conf]
    assert not [p for p, e in recorded.items() if e.get("type") == "mountpoint"], recorded
