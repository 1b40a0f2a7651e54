"""The gate meets the accuracy targets (precision >= 0.97, recall >= 0.95) on the labelled
corpus in tests/secrets_gate/corpus, scored by scripts/secrets_gate_accuracy.py with the
policy's matching rule (within one line; a finding on a look-alike is a false positive)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gate_helpers import REPO_ROOT, gate_binary  # noqa: E402


def test_the_corpus_is_scored_above_the_targets():
    labels = json.loads((REPO_ROOT / "tests/secrets_gate/corpus/labels.json").read_text())
    assert sum(len(v) for v in labels.values()) >= 200
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts/secrets_gate_accuracy.py"), "--binary", str(gate_binary())],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    match = re.search(r"secrets_gate: precision ([0-9.]+) recall ([0-9.]+)", proc.stdout)
    assert match, proc.stdout
    assert float(match.group(1)) >= 0.97 and float(match.group(2)) >= 0.95, proc.stdout
