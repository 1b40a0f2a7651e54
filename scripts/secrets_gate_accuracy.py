#!/usr/bin/env python3
"""Precision and recall of secrets_gate on the labelled corpus in tests/secrets_gate/corpus.

labels.json maps each corpus file to {line: "secret" | "not_secret"}. A finding matches a
secret when it is within one line of it (the policy's rule); two findings on one line count
once; a finding on an unlabelled or not_secret line is a false positive.

    scripts/secrets_gate_accuracy.py [--binary PATH]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "secrets_gate" / "corpus"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=str(REPO / "roles/ops/health_check/library/secrets_gate"))
    args = parser.parse_args()
    labels = json.loads((CORPUS / "labels.json").read_text())
    proc = subprocess.run([args.binary, "scan", ".", "--format", "json", "--no-gitignore", "--exclude", "labels.json", "--exclude", "generate.py"],
                          cwd=CORPUS, capture_output=True, text=True, check=False)
    if proc.returncode not in (0, 1):
        print(proc.stderr, file=sys.stderr)
        return 2
    found: dict[str, set[int]] = {}
    for f in json.loads(proc.stdout)["findings"]:
        found.setdefault(f["file"].removeprefix("./"), set()).add(f["line"])
    tp = fp = fn = 0
    misses, false_hits = [], []
    for file, by_line in labels.items():
        secrets = {int(k) for k, v in by_line.items() if v == "secret"}
        lines = found.get(file, set())
        for line in lines:
            if any(abs(line - s) <= 1 for s in secrets):
                tp += 1
            else:
                fp += 1
                false_hits.append(f"{file}:{line}")
        for s in secrets:
            if not any(abs(line - s) <= 1 for line in lines):
                fn += 1
                misses.append(f"{file}:{s}")
    extra = sorted(set(found) - set(labels))
    fp += sum(len(found[f]) for f in extra)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = (tp / (tp + fn)) if tp + fn else 1.0
    n_labels = sum(len(v) for v in labels.values())
    n_secret = sum(1 for v in labels.values() for x in v.values() if x == "secret")
    print(f"corpus: {n_labels} labelled locations ({n_secret} secret, {n_labels - n_secret} not_secret)")
    print(f"secrets_gate: precision {precision:.3f} recall {recall:.3f} (tp {tp}, fp {fp}, fn {fn})")
    for m in misses:
        print(f"  missed: {m}")
    for h in false_hits + extra:
        print(f"  false positive: {h}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
