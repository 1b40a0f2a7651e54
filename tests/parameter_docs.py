"""Compares a binary module's own parameter spec (`MODULE --parameters`, derived from its Args
type) with what the docs and the role say: the sidecar doc's options (recursively: names, types,
required, defaults, choices, elements), the role's meta/argument_specs.yml, defaults/main.yml
and the module task in tasks/main.yml. Each function returns the list of problems, empty when
all agree, so that a test can also show that a doctored copy is caught."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

# Ansible types a documented type may stand for: `raw` documents anything, `path` is a string
# the module reads as a path, a float option accepts integers.
COMPATIBLE = {
    "raw": None,
    "path": {"str", "path"},
    "float": {"float", "int"},
}


def module_spec(binary: Path) -> dict:
    """The module's argument spec as it prints it."""
    proc = subprocess.run(
        [str(binary), "--parameters"], capture_output=True, text=True, timeout=30, check=True
    )
    return json.loads(proc.stdout)


def sidecar_options(doc_path: Path) -> dict:
    return yaml.safe_load(doc_path.read_text())["DOCUMENTATION"]["options"]


def _types_agree(documented: str | None, in_code: str | None) -> bool:
    if documented is None or in_code is None:
        return documented == in_code
    if documented == in_code:
        return True
    allowed = COMPATIBLE.get(documented, set())
    return allowed is None or in_code in allowed


def _same_value(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return float(a) == float(b)
    return a == b


def compare_options(code: dict, doc: dict, where: str = "") -> list[str]:
    """Problems between the code's options and the documented ones, recursively."""
    problems = []
    for name in sorted(set(code) - set(doc)):
        problems.append(f"{where}{name}: accepted by the module but not documented")
    for name in sorted(set(doc) - set(code)):
        problems.append(f"{where}{name}: documented but not accepted by the module")
    for name in sorted(set(code) & set(doc)):
        c, d = code[name], doc[name] or {}
        path = f"{where}{name}"
        if not _types_agree(d.get("type", "str"), c.get("type")):
            problems.append(f"{path}: documented type {d.get('type', 'str')}, code {c.get('type')}")
        if bool(d.get("required", False)) != bool(c.get("required", False)):
            problems.append(
                f"{path}: documented required={d.get('required', False)}, "
                f"code required={c.get('required', False)}"
            )
        # An empty list or mapping as the code's default is "none given", which docs leave out.
        has_default = "default" in c and c["default"] not in ({}, [])
        if has_default and not _same_value(d.get("default"), c["default"]):
            problems.append(
                f"{path}: documented default {d.get('default')!r}, code default {c['default']!r}"
            )
        if "choices" in c and "choices" in d and sorted(map(str, c["choices"])) != sorted(
            map(str, d["choices"])
        ):
            problems.append(f"{path}: documented choices {d['choices']}, code {c['choices']}")
        if "choices" in c and "choices" not in d:
            problems.append(f"{path}: the code restricts it to {c['choices']}, undocumented")
        if c.get("type") == "list" and d.get("type") == "list":
            if not _types_agree(d.get("elements", "str"), c.get("elements")):
                problems.append(
                    f"{path}: documented elements {d.get('elements', 'str')}, "
                    f"code {c.get('elements')}"
                )
        if "suboptions" in c:
            problems += compare_options(c["suboptions"], d.get("suboptions") or {}, f"{path}.")
        elif "suboptions" in d:
            problems.append(f"{path}: documented suboptions the module does not have")
    return problems


def compare_role(code: dict, role_dir: Path, module: str, prefix: str) -> list[str]:
    """Problems between the module's top-level options and the role's variables: every option
    is a `PREFIX<option>` variable in meta/argument_specs.yml (same type) and
    defaults/main.yml, and the module task in tasks/main.yml passes exactly the options."""
    problems = []
    specs = yaml.safe_load((role_dir / "meta" / "argument_specs.yml").read_text())
    role_options = specs["argument_specs"]["main"]["options"]
    defaults = yaml.safe_load((role_dir / "defaults" / "main.yml").read_text()) or {}
    tasks = yaml.safe_load((role_dir / "tasks" / "main.yml").read_text()) or []
    module_tasks = [t for t in tasks if isinstance(t, dict) and module in t]
    if len(module_tasks) != 1:
        problems.append(f"tasks/main.yml: expected one {module} task, found {len(module_tasks)}")
        passed = set()
    else:
        passed = set(module_tasks[0][module])
    for name, option in code.items():
        variable = prefix + name
        if variable not in role_options:
            problems.append(f"meta/argument_specs.yml: no {variable} for option {name}")
        elif not _types_agree(role_options[variable].get("type", "str"), option.get("type")):
            problems.append(
                f"meta/argument_specs.yml: {variable} has type "
                f"{role_options[variable].get('type', 'str')}, the option {option.get('type')}"
            )
        if variable not in defaults:
            problems.append(f"defaults/main.yml: no {variable} for option {name}")
    for name in sorted(set(code) - passed):
        problems.append(f"tasks/main.yml: the {module} task does not pass {name}")
    for name in sorted(passed - set(code)):
        problems.append(f"tasks/main.yml: the {module} task passes {name}, not an option")
    return problems
