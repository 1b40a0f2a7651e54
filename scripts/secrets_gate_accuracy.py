#!/usr/bin/env python3
"""Precision and recall of secrets_gate on the labelled corpus in tests/secrets_gate/corpus.

labels.json maps each corpus file to {line: "secret" | "not_secret"}. A finding matches a
secret when it is within one line of it (the policy's rule); two findings on one line count
once; a finding on an unlabelled or not_secret line is a false positive.

    scripts/secrets_gate_accuracy.py [--binary PATH] [--detect-secrets PATH]

With --detect-secrets (PyPI detect-secrets, e.g. 1.5.0 in a venv of its own), the same corpus is
scored for it too, run with -n (no verification) from the corpus's parent directory.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "secrets_gate" / "corpus"


SKIP = {"labels.json", "generate.py"}


def gate_findings(binary: str) -> dict[str, set[int]]:
    proc = subprocess.run([binary, "scan", ".", "--format", "json", "--no-gitignore"]
                          + [a for name in SKIP for a in ("--exclude", name)],
                          cwd=CORPUS, capture_output=True, text=True, check=False)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"secrets_gate failed: {proc.stderr}")
    found: dict[str, set[int]] = {}
    for f in json.loads(proc.stdout)["findings"]:
        found.setdefault(f["file"].removeprefix("./"), set()).add(f["line"])
    return found


def detect_secrets_findings(tool: str) -> dict[str, set[int]]:
    proc = subprocess.run([tool, "scan", "-n", "--all-files", CORPUS.name], cwd=CORPUS.parent,
                          capture_output=True, text=True, check=True)
    found: dict[str, set[int]] = {}
    for file, items in json.loads(proc.stdout)["results"].items():
        rel = file.removeprefix(CORPUS.name + "/")
        if Path(rel).name in SKIP:
            continue
        for item in items:
            found.setdefault(rel, set()).add(item["line_number"])
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=str(REPO / "roles/ops/health_check/library/secrets_gate"))
    parser.add_argument("--detect-secrets", help="path of a detect-secrets executable to compare with")
    args = parser.parse_args()
    labels = json.loads((CORPUS / "labels.json").read_text())
    n_labels = sum(len(v) for v in labels.values())
    n_secret = sum(1 for v in labels.values() for x in v.values() if x == "secret")
    print(f"corpus: {n_labels} labelled locations ({n_secret} secret, {n_labels - n_secret} not_secret)")
    worst = score("secrets_gate", labels, gate_findings(args.binary))
    if args.detect_secrets:
        score("detect-secrets", labels, detect_secrets_findings(args.detect_secrets), details=False)
    return 0 if worst else 1


def score(name: str, labels: dict, found: dict[str, set[int]], details: bool = True) -> bool:
    """Prints precision and recall; True when they meet the targets (0.97 and 0.95)."""
    tp = fp = fn = 0
    misses, false_hits = [], []
    for file, by_line in labels.items():
        secrets = {int(k) for k, v in by_line.items() if v == "secret"}
        look_alikes = {int(k) for k, v in by_line.items() if v == "not_secret"}
        # A finding on a labelled look-alike is a false positive even next to a secret.
        lines = {line for line in found.get(file, set())}
        hits = {line for line in lines if line not in look_alikes and any(abs(line - s) <= 1 for s in secrets)}
        tp += len(hits)
        for line in sorted(lines - hits):
            fp += 1
            false_hits.append(f"{file}:{line}")
        for s in sorted(secrets):
            if not any(abs(line - s) <= 1 for line in hits):
                fn += 1
                misses.append(f"{file}:{s}")
    extra = sorted(set(found) - set(labels))
    fp += sum(len(found[f]) for f in extra)
    precision = tp / (tp + fp) if tp + fp else 1.0
    n_secret = sum(1 for v in labels.values() for x in v.values() if x == "secret")
    recall = (n_secret - fn) / n_secret if n_secret else 1.0
    print(f"{name}: precision {precision:.3f} recall {recall:.3f} "
          f"(true-positive findings {tp}, false positives {fp}, missed secrets {fn})")
    if details:
        for m in misses:
            print(f"  missed: {m}")
        for h in false_hits + extra:
            print(f"  false positive: {h}")
    return precision >= 0.97 and recall >= 0.95


if __name__ == "__main__":
    sys.exit(main())
