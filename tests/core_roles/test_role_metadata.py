"""The core roles' metadata, read by its real consumers: every role documents every variable
it defaults (and only those) in meta/argument_specs.yml with the same default, `ansible-doc`
renders each role, and each declares its extra state for the idempotence gate."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import REPO_ROOT, venv_tool

ROLES_DIR = REPO_ROOT / "roles" / "core"
ROLES = sorted(path.name for path in ROLES_DIR.iterdir() if (path / "tasks").is_dir())


def load(path: Path):
    return yaml.safe_load(path.read_text())


def test_there_are_at_least_six_core_roles():
    assert len(ROLES) >= 6, ROLES


@pytest.mark.parametrize("role", ROLES)
def test_every_default_is_documented_with_the_same_value(role):
    defaults = load(ROLES_DIR / role / "defaults" / "main.yml") or {}
    options = load(ROLES_DIR / role / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    assert sorted(options) == sorted(defaults), f"{role}: documented vs defaulted variables differ"
    for name, value in defaults.items():
        assert name.startswith(f"{role}_"), f"{role}: variable {name} lacks the role prefix"
        assert options[name].get("default") == value, f"{role}: {name}: spec default differs"
        assert options[name].get("description"), f"{role}: {name} has no description"


@pytest.mark.parametrize("role", ROLES)
def test_each_role_has_a_readme_and_declares_its_extra_state(role):
    readme = (ROLES_DIR / role / "README.md").read_text()
    assert readme.startswith(f"# core/{role}\n")
    declaration = load(ROLES_DIR / role / "meta" / "idempotence.yml")
    assert set(declaration) <= {"paths", "systemd_units", "packages", "sysctl", "users", "groups", "ignore"}
    assert any(declaration.get(kind) for kind in ("paths", "systemd_units", "packages"))


def test_ansible_doc_renders_every_core_role(ansible_env):
    for role in ROLES:
        doc = subprocess.run(
            [str(venv_tool("ansible-doc")), "-t", "role", "-r", str(ROLES_DIR), role],
            cwd=REPO_ROOT, env=ansible_env, capture_output=True, text=True, timeout=120,
        )
        assert doc.returncode == 0, doc.stderr
        assert "ENTRY POINT: *main*" in doc.stdout, doc.stdout[:2000]
        for name in load(ROLES_DIR / role / "defaults" / "main.yml") or {}:
            assert name in doc.stdout, f"{role}: {name} missing from ansible-doc"
