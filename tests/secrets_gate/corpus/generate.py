#!/usr/bin/env python3
"""Writes the labelled corpus (deterministic, seed 7): files plus labels.json. Rerun after editing."""
import json, random, base64
from pathlib import Path
random.seed(7)
C = Path(__file__).resolve().parent
def rnd(n, alpha="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"):
    return "".join(random.choice(alpha) for _ in range(n))
S, N = "secret", "not_secret"
yaml_entries = []
words = ["Raven", "Meadow", "Copper", "Harbor", "Falcon", "Willow", "Ember", "Quartz"]
for i in range(30):
    pw = random.choice(words) + "_" + random.choice(words) + str(random.randint(100, 9999)) + random.choice("*!#%")
    key = random.choice(["db_password", "ansible_become_pass", "smtp_passwd", "redis_auth_token", "api_secret", "mysql_root_password", "ldap_bind_pw", "app_secret_key", "client_secret", "wg_private_key"])
    yaml_entries.append((f"{key}_{i}", pw, S))
tokens = [
    lambda: "AKIA" + rnd(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
    lambda: "ghp_" + rnd(36), lambda: "glpat-" + rnd(20), lambda: "xoxb-" + rnd(10, "0123456789") + "-" + rnd(24),
    lambda: "sk_live_" + rnd(24), lambda: "SG." + rnd(22) + "." + rnd(43), lambda: "npm_" + rnd(36),
    lambda: "AIza" + rnd(35), lambda: "AGE-SECRET-KEY-1" + rnd(58, "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L"),
    lambda: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI" + rnd(20) + ".", 
]
for i in range(30):
    t = tokens[i % len(tokens)]()
    if t.endswith("."):
        t += rnd(43)
    yaml_entries.append((f"service_{i}_value", t, S))
for i in range(15):
    yaml_entries.append((f"database_url_{i}", f"postgres://app{i}:{rnd(14)}@db{i}.internal:5432/app", S))
for i in range(15):
    yaml_entries.append((f"session_cookie_{i}", rnd(40), S))
for i in range(10):
    yaml_entries.append((f"k8s_data_password_{i}", base64.b64encode((rnd(12) + "!").encode()).decode(), S))
# negatives
neg = []
for i in range(15): neg.append((f"db_password_ref_{i}", "{{ vault_db_password_%d }}" % i, N))
for i in range(8): neg.append((f"api_token_{i}", "{{ lookup('env', 'API_TOKEN_%d') }}" % i, N))
for i, p in enumerate(["CHANGEME", "changeme", "<redacted>", "********", "REPLACE_ME", "TODO", "your-api-key-here", "ghp_" + "x"*36, "AGE-SECRET-KEY-1" + "X"*58, "${DB_PASSWORD}"]):
    neg.append((f"placeholder_password_{i}", p, N))
for i in range(8): neg.append((f"user_password_hash_{i}", "$6$rounds=5000$" + rnd(8) + "$" + rnd(60, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789./"), N))
for i in range(8): neg.append((f"image_digest_{i}", "sha256:" + rnd(64, "0123456789abcdef"), N))
for i in range(8): neg.append((f"git_commit_{i}", rnd(40, "0123456789abcdef"), N))
for i in range(8): neg.append((f"instance_uuid_{i}", "%s-%s-4%s-a%s-%s" % (rnd(8,"0123456789abcdef"), rnd(4,"0123456789abcdef"), rnd(3,"0123456789abcdef"), rnd(3,"0123456789abcdef"), rnd(12,"0123456789abcdef")), N))
for i, a in enumerate(["ecdh-sha2-nistp256", "hmac-sha2-512-etm@openssh.com", "chacha20-poly1305@openssh.com", "curve25519-sha256", "aes256-gcm@openssh.com", "diffie-hellman-group16-sha512"]):
    neg.append((f"ssh_algorithm_{i}", a, N))
for i in range(6): neg.append((f"password_min_length_{i}", str(8 + i), N))
for i in range(6): neg.append((f"vault_password_file_{i}", f"~/.vault_pass_{i}", N))
for i in range(6): neg.append((f"token_ttl_{i}", f"{i+1}h", N))
for i in range(5): neg.append((f"deploy_pubkey_{i}", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + rnd(43) + f" ops{i}@example", N))
for i in range(5): neg.append((f"sops_recipient_{i}", "age1" + rnd(58, "qpzry9x8gf2tvdw0s3jn54khce6mua7l"), N))
for i in range(5): neg.append((f"role_arn_{i}", f"arn:aws:iam::12345678901{i}:role/deploy-{i}", N))
for i in range(5): neg.append((f"motd_b64_{i}", base64.b64encode(f"Authorized use only, host {i}. All activity is logged.".encode()).decode(), N))
neg.append(("aws_access_key_id_doc", "AKIAIOSFODNN7EXAMPLE", N))
neg.append(("aws_secret_access_key_doc", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", N))
neg.append(("stripe_publishable", "pk_live_" + rnd(24), N))
neg.append(("password_prompt", "Enter the admin password", N))
entries = yaml_entries + neg
random.shuffle(entries)
labels = {}
lines = ["---"]
lab = {}
for k, v, l in entries:
    lines.append(f"{k}: {json.dumps(v)}")
    lab[len(lines)] = l
lines.append("# password: set via vault")
lab[len(lines)] = N
(C / "group_vars").mkdir(parents=True, exist_ok=True)
(C / "group_vars" / "all.yml").write_text("\n".join(lines) + "\n")
labels["group_vars/all.yml"] = lab
# INI inventory
ini = ["[web]"]; lab = {}
for i in range(12):
    if i % 2 == 0:
        ini.append(f"web{i} ansible_host=10.0.0.{i} ansible_password={random.choice(words)}-{random.randint(1000,9999)}x"); lab[len(ini)] = S
    else:
        ini.append(f"web{i} ansible_host=10.0.0.{i} ansible_user=deploy"); lab[len(ini)] = N
ini.append("[web:vars]"); ini.append("ansible_become_password={{ vault_become }}"); lab[len(ini)] = N
ini.append("http_port=8080"); lab[len(ini)] = N
(C / "inventory").mkdir(exist_ok=True)
(C / "inventory" / "hosts").write_text("\n".join(ini) + "\n")
labels["inventory/hosts"] = lab
# dotenv
env = ["# settings"]; lab = {}
for i in range(10):
    if i % 2 == 0:
        env.append(f"SERVICE_{i}_SECRET={rnd(24)}"); lab[len(env)] = S
    else:
        env.append(f"SERVICE_{i}_HOST=svc{i}.internal"); lab[len(env)] = N
(C / ".env").write_text("\n".join(env) + "\n")
labels[".env"] = lab
# a vault file and a sops-looking file: no findings inside
(C / "group_vars" / "vault.yml").write_text("$ANSIBLE_VAULT;1.2;AES256;prod\n" + "\n".join(rnd(80, "0123456789abcdef") for _ in range(6)) + "\n")
labels["group_vars/vault.yml"] = {i: N for i in range(1, 8)}
(C / "corpus-labels-note.txt").write_text("")
(C / "corpus-labels-note.txt").unlink()

# Hand-written traps: each line of HARD is "label|text": s secret (on the line the policy points
# at), n a non-secret look-alike, r a line inside a secret's multi-line range (not labelled).
PEM_BODY = "\n".join("  " + rnd(64, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") for _ in range(4))
docker_auth = base64.b64encode(("ci:" + rnd(16)).encode()).decode()
dockerconfig = base64.b64encode(json.dumps({"auths": {"registry.example.org": {"auth": docker_auth}}}).encode()).decode()
HARD = [
    "r|# yamllint disable rule:line-length",
    "n|---",
    "s|tls_private_key: |",
    "r|  -----BEGIN RSA PRIVATE KEY-----",
] + ["r|" + l for l in PEM_BODY.split("\n")] + [
    "r|  -----END RSA PRIVATE KEY-----",
    "n|tls_certificate: |",
    "n|  -----BEGIN CERTIFICATE-----",
    "n|  " + rnd(64),
    "n|  -----END CERTIFICATE-----",
    "s|root_pw_literal: \"{{ '" + random.choice(words) + "-" + str(random.randint(1000, 9999)) + "' | password_hash('sha512') }}\"",
    "n|user_pw_hashed: \"{{ user_plain_password | password_hash('sha512') }}\"",
    "s|api_fallback_token: \"{{ lookup('env', 'API_TOKEN') | default('" + rnd(20) + "') }}\"",
    "n|docs_example_url: \"postgresql://user:password@host/db\"",
    "s|backup_target: \"https://backup:" + rnd(18) + "@backup.internal/repo\"",
    "n|kind: Secret",
    "n|data:",
    "s|  DB_PASSWORD: " + base64.b64encode(("Pw-" + rnd(12)).encode()).decode(),
    "n|  DB_USER: " + base64.b64encode(b"app").decode(),
    "s|  .dockerconfigjson: " + dockerconfig,
    "n|banner_b64: " + base64.b64encode(b"Welcome to the build farm. Unauthorised access is prohibited.").decode(),
    "s|# old admin password: " + random.choice(words) + "_" + str(random.randint(1000, 9999)) + "!",
    "n|# vault_password: see the team vault",
    "n|oauth_client_id: 1234567890-" + rnd(32, "abcdefghijklmnopqrstuvwxyz0123456789") + ".apps.googleusercontent.com",
    "n|gcp_private_key_id: " + rnd(40, "0123456789abcdef"),
    "n|wg_peer_public_key: " + base64.b64encode(bytes(random.randrange(256) for _ in range(32))).decode(),
    "s|wg_private_key: " + base64.b64encode(bytes(random.randrange(256) for _ in range(32))).decode(),
    "n|npm_integrity: sha512-" + base64.b64encode(bytes(random.randrange(256) for _ in range(64))).decode(),
    "n|vpc_endpoint: vpce-0a1b2c3d4e5f60718",
    "s|azure_storage: \"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=" + base64.b64encode(bytes(random.randrange(256) for _ in range(64))).decode() + ";EndpointSuffix=core.windows.net\"",
    "n|password_retries: 3",
    "n|password: ~",
    "n|secret_name: app-db-credentials",
    "n|auth_header_name: X-Api-Key",
    "r|my_cnf: |",
    "r|  [client]",
    "r|  user = app",
    "s|  password = " + random.choice(words) + "-" + str(random.randint(1000, 9999)),
    "n|ansible_ssh_common_args: \"-o KexAlgorithms=curve25519-sha256 -o MACs=hmac-sha2-512-etm@openssh.com\"",
]
lab = {}
text = []
for i, item in enumerate(HARD, start=1):
    label, line = item.split("|", 1)
    text.append(line)
    if label == "s":
        lab[i] = S
    elif label == "n" and line.strip() != "---":
        lab[i] = N
(C / "group_vars" / "traps.yml").write_text("\n".join(text) + "\n")
labels["group_vars/traps.yml"] = lab
(C / "labels.json").write_text(json.dumps(labels, indent=1, sort_keys=True) + "\n")
print(sum(len(v) for v in labels.values()))
