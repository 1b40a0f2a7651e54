"""One source of truth for every parameter: each module's own spec (`MODULE --parameters`, from
its Args type) against its sidecar doc, and for health_check also the role's argument specs,
defaults and task (the role passes every parameter through)."""

from __future__ import annotations

import copy
import os

import pytest

from conftest import REPO_ROOT, ROLE_LIBRARY
from parameter_docs import compare_options, compare_role, module_spec, sidecar_options

ROLE_DIR = REPO_ROOT / "roles" / "ops" / "health_check"


@pytest.mark.parametrize("module", ["health_check", "idempotence_probe", "secrets_gate"])
def test_the_sidecar_doc_documents_every_parameter_with_its_type_and_default(module):
    binary = ROLE_LIBRARY / module
    assert binary.is_file() and os.access(binary, os.X_OK), f"{binary}: run `make install` first"
    spec = module_spec(binary)
    assert spec and all("type" in option for option in spec.values()), (
        f"{module} --parameters gives no types: its Args must derive schemars::JsonSchema "
        "and the module must return ansible_module::spec::argument_spec"
    )
    problems = compare_options(spec, sidecar_options(ROLE_LIBRARY / f"{module}.yml"))
    assert problems == []


def test_the_role_passes_and_declares_every_parameter(module_binary):
    problems = compare_role(module_spec(module_binary), ROLE_DIR, "health_check", "health_check_")
    assert problems == []


def test_a_parameter_added_to_the_code_but_not_the_docs_is_caught(module_binary):
    spec = module_spec(module_binary)
    doc = sidecar_options(ROLE_LIBRARY / "health_check.yml")
    doctored = copy.deepcopy(spec)
    doctored["retries"] = {"type": "int", "default": 3}
    doctored["http"]["suboptions"]["proxy_url"] = {"type": "str"}
    doctored["memory"]["suboptions"]["max_used_percent"]["default"] = 80
    problems = compare_options(doctored, doc)
    assert "retries: accepted by the module but not documented" in problems
    assert "http.proxy_url: accepted by the module but not documented" in problems
    assert any(p.startswith("memory.max_used_percent: documented default 90") for p in problems)
    role_problems = compare_role(doctored, ROLE_DIR, "health_check", "health_check_")
    assert "meta/argument_specs.yml: no health_check_retries for option retries" in role_problems
    assert "defaults/main.yml: no health_check_retries for option retries" in role_problems
    assert "tasks/main.yml: the health_check task does not pass retries" in role_problems


def test_a_documented_parameter_the_code_lacks_is_caught(module_binary):
    doc = copy.deepcopy(sidecar_options(ROLE_LIBRARY / "health_check.yml"))
    doc["colour"] = {"type": "str"}
    problems = compare_options(module_spec(module_binary), doc)
    assert problems == ["colour: documented but not accepted by the module"]
