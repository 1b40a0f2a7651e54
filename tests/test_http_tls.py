"""HTTP checks and TLS: a plain `http://` check never builds a TLS client with the system's CA
certificates (reading every CA file costs more than a TCP check)."""

from __future__ import annotations

import json
import os
import subprocess


def test_a_plain_http_check_never_reads_the_system_ca_certificates(module_binary, tmp_path, http_server):
    # A FIFO nobody writes to: opening it to read blocks for ever. Loading CA certificates for
    # a plain http:// URL would hang the module here.
    fifo = tmp_path / "ca-fifo.pem"
    os.mkfifo(fifo)
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"http": [f"{http_server}/healthz"], "deadline": "5s"}))
    proc = subprocess.run([str(module_binary), str(args_file)], capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin", "SSL_CERT_FILE": str(fifo), "SSL_CERT_DIR": str(tmp_path)})
    result = json.loads(proc.stdout)
    (check,) = result["checks"]
    assert check["status"] == "pass", result

