"""How people find and use the module outside the role: ad-hoc from the repo root (through
ansible.cfg's `library`) and its documentation in ansible-doc."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from conftest import MODULE_BINARY, REPO_ROOT, ROLE_LIBRARY, venv_tool
from parameter_docs import module_spec

def code_parameters() -> list[str]:
    """The top-level parameters as the module itself reports them (`--parameters`, derived from
    its Args type)."""
    return list(module_spec(MODULE_BINARY))


def adhoc_result(output: str) -> tuple[str, dict]:
    """Parse `localhost | SUCCESS => {...}` as printed by ad-hoc `ansible`."""
    match = re.search(r"^localhost \| (\w+)(?: \| rc=\d+)? => ", output, re.MULTILINE)
    assert match, f"no result line for localhost in:\n{output}"
    result, _ = json.JSONDecoder().raw_decode(output[match.end():])
    return match.group(1), result


def test_adhoc_from_repo_root_finds_the_module_through_ansible_cfg(
    module_binary, ansible_env, tcp_listener
):
    # As a person would run it: from the repo root, ansible.cfg found in the current
    # directory, implicit localhost.
    env = {k: v for k, v in ansible_env.items() if k != "ANSIBLE_CONFIG"}
    env["ANSIBLE_CALLBACK_RESULT_FORMAT"] = "json"  # ansible.cfg asks for YAML
    proc = subprocess.run(
        [
            str(venv_tool("ansible")),
            "localhost",
            "-m",
            "health_check",
            "-a",
            json.dumps({"tcp": [f"127.0.0.1:{tcp_listener}"]}),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = proc.stdout + proc.stderr

    assert proc.returncode == 0, output
    state, result = adhoc_result(proc.stdout)
    assert state == "SUCCESS", output
    assert result["summary"]["status"] == "pass", result
    assert [check["kind"] for check in result["checks"]] == ["tcp"], result


def test_repo_library_links_to_the_role_library():
    for name in ("health_check", "health_check.yml"):
        link = REPO_ROOT / "library" / name
        assert link.is_symlink(), f"{link} must be a symlink into the role's library/"
        target = os.readlink(link)
        assert not os.path.isabs(target), f"{link} -> {target} must be relative"
        assert link.resolve() == (ROLE_LIBRARY / name).resolve()
    assert (REPO_ROOT / "library" / "health_check").resolve() == MODULE_BINARY.resolve()


def run_ansible_doc(ansible_env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(venv_tool("ansible-doc")), *args],
        cwd=REPO_ROOT,
        env=ansible_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_ansible_doc_renders_the_sidecar_doc(module_binary, ansible_env):
    proc = run_ansible_doc(ansible_env, "-M", "roles/ops/health_check/library", "health_check")

    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout
    for option in set(code_parameters()) | {"body_contains", "max_used_percent", "mandatory"}:
        assert option in text, f"option {option!r} missing from ansible-doc output:\n{text}"
    for section in ("EXAMPLES", "RETURN VALUES", "summary", "checks"):
        assert section in text, f"{section!r} missing from ansible-doc output:\n{text}"


def test_ansible_doc_json_matches_the_interface(module_binary, ansible_env):
    proc = run_ansible_doc(
        ansible_env, "--json", "-M", "roles/ops/health_check/library", "health_check"
    )

    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)["health_check"]
    documentation = doc["doc"]
    # The sidecar doc documents exactly the parameters the code accepts.
    assert set(documentation["options"]) == set(code_parameters())
    assert documentation["options"]["timeout"]["default"] == "5s"
    assert documentation["options"]["deadline"]["default"] == "60s"
    assert documentation["options"]["interval"]["default"] == "2s"
    assert set(documentation["options"]["system_state"]["suboptions"]["state"]["choices"]) == {
        "initializing", "starting", "running", "degraded", "maintenance", "stopping", "offline",
        "unknown",
    }
    assert documentation["attributes"]["check_mode"]["support"] == "full"
    assert documentation["attributes"]["diff_mode"]["support"] == "none"
    # The docs shared by all modules (docs/doc_fragments/binary_module.py, found through
    # ansible.cfg's doc_fragment_plugins) are merged in.
    assert documentation["attributes"]["async"]["support"] == "partial"
    assert documentation["attributes"]["platform"]["platforms"] == "posix"
    assert any("needs no Python" in note for note in documentation["notes"])
    assert {"checks", "summary", "msg", "artifacts"} <= set(doc["return"])
    assert {"mandatory_failed", "attempts", "waited_ms"} <= set(doc["return"]["summary"]["contains"])
    assert set(doc["return"]["checks"]["contains"]["kind"]["choices"]) == {
        "disk", "memory", "load", "tcp", "http", "gpu", "systemd", "container", "containers",
    }
    assert doc["examples"].strip()


def test_documented_options_match_the_code(module_binary):
    in_code = code_parameters()
    assert len(in_code) == len(set(in_code)), in_code
    assert {"disks", "tcp", "http", "systemd", "containers", "gpus", "deadline"} <= set(in_code)


def test_ansible_doc_finds_the_module_through_ansible_cfg_library(module_binary, ansible_env):
    proc = run_ansible_doc(ansible_env, "health_check")

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "deadline" in proc.stdout


def test_git_ignores_the_built_binary_but_not_its_doc():
    def ignored(path: Path) -> bool:
        proc = subprocess.run(
            ["git", "check-ignore", "-q", str(path.relative_to(REPO_ROOT))],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        )
        assert proc.returncode in (0, 1), proc.stderr
        return proc.returncode == 0

    assert ignored(MODULE_BINARY)
    assert not ignored(ROLE_LIBRARY / "health_check.yml")
    assert not ignored(REPO_ROOT / "library" / "health_check")
