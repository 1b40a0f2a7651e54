"""One source of truth for every parameter: the module's own spec (`health_check --parameters`,
from its Args type) against the sidecar doc, the role's argument specs, defaults and task."""

from __future__ import annotations

import copy

from conftest import REPO_ROOT, ROLE_LIBRARY
from parameter_docs import compare_options, compare_role, module_spec, sidecar_options

ROLE_DIR = REPO_ROOT / "roles" / "ops" / "health_check"


def test_the_sidecar_doc_documents_every_parameter_with_its_type_and_default(module_binary):
    problems = compare_options(
        module_spec(module_binary), sidecar_options(ROLE_LIBRARY / "health_check.yml")
    )
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
