#!/usr/bin/env python3
"""Precision and recall of secrets_gate on the labelled corpus in tests/secrets_gate/corpus.

labels.json maps each corpus file to {line: "secret" | "not_secret"}. A finding matches a
secret when it is within one line of it (the policy's rule); two findings on one line count
once; a finding on an unlabelled or not_secret line is a false positive.

    scripts/secrets_gate_accuracy.py [--binary PATH] [--detect-secrets PATH]
                                     [--ripsecrets [PATH]] [--output FILE]

With --detect-secrets (PyPI detect-secrets, e.g. 1.5.0 in a venv of its own), the same corpus is
scored for it too, run with -n (no verification) from the corpus's parent directory.

With --ripsecrets (crates.io ripsecrets 0.1.11; without a PATH, the one in .cache/bench-tools,
installed there with `cargo install --locked` on first use, as the speed benchmark does), the
same corpus is scored for it too, from the corpus's parent directory with every corpus file named
on the command line (a directory walk of its own would skip the hidden .env). Its output holds
the matched lines, secrets included: only file and line are read from it, nothing is printed.

--output writes the figures as JSON (ci-artifacts/bench/secrets_gate_accuracy.json holds the
ones in the README).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "secrets_gate" / "corpus"
TOOLS = REPO / ".cache" / "bench-tools"  # shared with scripts/bench/secrets_gate_speed.py
RIPSECRETS_VERSION = "0.1.11"


SKIP = {"labels.json", "generate.py"}


def runnable(tool: str) -> str:
    """A tool given as a path works from the corpus's directories too; a bare name is looked up."""
    return str(Path(tool).resolve()) if "/" in tool else tool


def gate_findings(binary: str) -> dict[str, set[int]]:
    proc = subprocess.run([runnable(binary), "scan", ".", "--format", "json", "--no-gitignore"]
                          + [a for name in SKIP for a in ("--exclude", name)],
                          cwd=CORPUS, capture_output=True, text=True, check=False)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"secrets_gate failed: {proc.stderr}")
    found: dict[str, set[int]] = {}
    for f in json.loads(proc.stdout)["findings"]:
        found.setdefault(f["file"].removeprefix("./"), set()).add(f["line"])
    return found


def detect_secrets_findings(tool: str) -> dict[str, set[int]]:
    proc = subprocess.run([runnable(tool), "scan", "-n", "--all-files", CORPUS.name], cwd=CORPUS.parent,
                          capture_output=True, text=True, check=True)
    found: dict[str, set[int]] = {}
    for file, items in json.loads(proc.stdout)["results"].items():
        rel = file.removeprefix(CORPUS.name + "/")
        if Path(rel).name in SKIP:
            continue
        for item in items:
            found.setdefault(rel, set()).add(item["line_number"])
    return found


def ripsecrets_binary(explicit: str | None) -> str:
    if explicit:
        return explicit
    cached = TOOLS / "bin" / "ripsecrets"
    if not cached.is_file() and shutil.which("ripsecrets"):
        return str(shutil.which("ripsecrets"))
    if not cached.is_file():
        print(f"installing ripsecrets {RIPSECRETS_VERSION} into {TOOLS} (once)...", file=sys.stderr, flush=True)
        subprocess.run(["cargo", "install", "--locked", "--root", str(TOOLS), "--version", RIPSECRETS_VERSION,
                        "ripsecrets"], check=True, stdout=subprocess.DEVNULL)
    return str(cached)


def ripsecrets_findings(tool: str) -> dict[str, set[int]]:
    files = sorted(str(p.relative_to(CORPUS.parent)) for p in CORPUS.rglob("*")
                   if p.is_file() and p.name not in SKIP)
    # stdout holds the matched lines (the secrets): parsed here, never echoed.
    proc = subprocess.run([runnable(tool), *files], cwd=CORPUS.parent, capture_output=True, text=True, check=False)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"ripsecrets failed with exit code {proc.returncode}")
    found: dict[str, set[int]] = {}
    for line in proc.stdout.splitlines():
        match = re.match(r"(.+?):(\d+):", line)
        if match:
            found.setdefault(match.group(1).removeprefix(CORPUS.name + "/"), set()).add(int(match.group(2)))
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=str(REPO / "roles/ops/health_check/library/secrets_gate"))
    parser.add_argument("--detect-secrets", help="path of a detect-secrets executable to compare with")
    parser.add_argument("--ripsecrets", nargs="?", const="", default=None,
                        help="compare with ripsecrets (this executable, or the cached one)")
    parser.add_argument("--output", help="write the figures to this JSON file")
    args = parser.parse_args()
    labels = json.loads((CORPUS / "labels.json").read_text())
    n_labels = sum(len(v) for v in labels.values())
    n_secret = sum(1 for v in labels.values() for x in v.values() if x == "secret")
    print(f"corpus: {n_labels} labelled locations ({n_secret} secret, {n_labels - n_secret} not_secret)")
    figures: dict = {"corpus": str(CORPUS.relative_to(REPO)), "locations": n_labels, "secrets": n_secret,
                     "targets": {"precision": 0.97, "recall": 0.95}, "scanners": {}}
    worst = score("secrets_gate", labels, gate_findings(args.binary), figures=figures)
    if args.detect_secrets:
        score("detect-secrets", labels, detect_secrets_findings(args.detect_secrets), details=False, figures=figures)
        figures["scanners"]["detect-secrets"]["version"] = subprocess.run(
            [runnable(args.detect_secrets), "--version"], capture_output=True, text=True, check=False).stdout.strip()
    if args.ripsecrets is not None:
        tool = ripsecrets_binary(args.ripsecrets)
        version = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False).stdout.strip()
        score("ripsecrets", labels, ripsecrets_findings(tool), details=False, figures=figures)
        figures["scanners"]["ripsecrets"]["version"] = version
    if args.output:
        Path(args.output).write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if worst else 1


def score(name: str, labels: dict, found: dict[str, set[int]], details: bool = True,
          figures: dict | None = None) -> bool:
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
    if figures is not None:
        figures["scanners"][name] = {"precision": round(precision, 3), "recall": round(recall, 3),
                                     "true_positive_findings": tp, "false_positives": fp, "missed_secrets": fn}
    if details:
        for m in misses:
            print(f"  missed: {m}")
        for h in false_hits + extra:
            print(f"  false positive: {h}")
    return precision >= 0.97 and recall >= 0.95


if __name__ == "__main__":
    sys.exit(main())
