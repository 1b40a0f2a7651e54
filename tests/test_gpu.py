"""The GPU check of the shipped static binary. CI has no GPU: the real no-driver path is run
as it is, and the nvidia-smi path (the one a static build uses on GPU hosts) is driven by a
stand-in nvidia-smi on PATH that prints what the real tool prints for two H100s. The NVML path
itself (dynamic builds; DriverNotLoaded with Debian's libnvidia-ml1) is covered by the crate's
tests."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

STAND_IN = """#!/bin/sh
case "$*" in
  *--query-gpu*)
    echo "0, NVIDIA H100 80GB HBM3, GPU-aaaa, 550.54.15, 41, 0, No, Not Active, Not Active, Not Active, Not Active"
    echo "1, NVIDIA H100 80GB HBM3, GPU-bbbb, 550.54.15, ${HOT_TEMP:-45}, ${ECC:-0}, No, Not Active, Not Active, Not Active, Not Active" ;;
  *TEMPERATURE*)
    printf '    GPU Slowdown Temp                 : 87 C\\n    GPU Slowdown Temp                 : 87 C\\n' ;;
  *--query-remapped-rows*)
    echo "0, 0"; echo "0, ${REMAP_FAILED:-0}" ;;
  *) exit 1 ;;
esac
"""


def run(binary: Path, tmp_path: Path, args: dict, path: str, **env: str) -> dict:
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps(args))
    proc = subprocess.run(
        [str(binary), str(args_file)],
        env={"PATH": path, **env},
        capture_output=True, text=True, timeout=30,
    )
    return json.loads(proc.stdout)


def test_no_driver_is_skipped_unless_required(module_binary, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    out = run(module_binary, tmp_path, {"gpus": {}}, str(empty))
    check = out["checks"][0]
    assert out["failed"] is False, out
    assert check["status"] == "skip", check
    assert check["message"].startswith("no NVIDIA driver found: nvidia-smi not found on PATH"), check

    out = run(module_binary, tmp_path, {"gpus": {"required": True}}, str(empty))
    assert out["failed"] is True, out
    assert out["checks"][0]["status"] == "fail"
    assert out["msg"].endswith("gpus.required is true)"), out["msg"]


def test_nvidia_smi_readings_are_judged(module_binary, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text(STAND_IN)
    smi.chmod(0o755)
    path = f"{bin_dir}{os.pathsep}/usr/bin:/bin"

    out = run(module_binary, tmp_path, {"gpus": {"min_count": 2, "min_driver_version": "535.104"}}, path)
    check = out["checks"][0]
    assert check["status"] == "pass", check
    assert check["details"]["source"] == "nvidia-smi"
    assert check["details"]["count"] == 2
    assert [d["temperature_limit_c"] for d in check["details"]["devices"]] == [82, 82]

    out = run(module_binary, tmp_path, {"gpus": {"min_count": 4}}, path, HOT_TEMP="86", ECC="3", REMAP_FAILED="1")
    message = out["checks"][0]["message"]
    assert out["failed"] is True
    assert message == (
        "2 GPU(s) found, expected at least 4"
        + "; GPU 1 (NVIDIA H100 80GB HBM3): temperature 86C > 82C"
        + "; GPU 1 (NVIDIA H100 80GB HBM3): 3 uncorrected ECC error(s) since boot"
        + "; GPU 1 (NVIDIA H100 80GB HBM3): row remapping failed"
    ), message
