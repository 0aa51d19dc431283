"""Entra ID and `az login` against the emulator, through the real `az`, MSAL and OpenSSH tools."""
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

SSH_CERT_SCOPE = "https://pas.windows.net/CheckMyAccess/Linux/.default"


def test_az_login_and_account_show(az, emulator):
    account = az("account", "show", "-o", "json").json
    assert account["id"] == emulator.ready["subscription"]
    assert account["tenantId"] == emulator.ready["tenant"]
    assert account["user"] == {"name": emulator.ready["client_id"], "type": "servicePrincipal"}
    assert account["environmentName"] == emulator.ready["cloud_name"]
    cloud = az("cloud", "show", "-o", "json").json
    assert cloud["endpoints"]["resourceManager"] == emulator.url
    assert cloud["endpoints"]["activeDirectory"] == emulator.url.rstrip("/")


def test_core_az_reads_seeded_resources(az):
    vm = az("vm", "show", "-g", "demo-rg", "-n", "linux-vm", "-d", "-o", "json").json
    assert vm["powerState"] == "VM running" and vm["privateIps"] == "10.0.0.4"
    assert vm["storageProfile"]["osDisk"]["osType"] == "Linux"
    stopped = az("vm", "get-instance-view", "-g", "demo-rg", "-n", "stopped-vm", "-o", "json").json
    assert "PowerState/stopped" in [s["code"] for s in stopped["instanceView"]["statuses"]]


def test_wrong_client_secret_is_invalid_client(arm, az, az_env, emulator, tmp_path):
    answer = arm.fetch_token("not-the-secret")
    assert answer.status_code == 401
    body = answer.json()
    assert body["error"] == "invalid_client" and body["error_codes"] == [7000215]
    assert body["error_description"].startswith("AADSTS7000215: Invalid client secret provided.")
    for name in ("config", "clouds.config"):  # the emulator cloud, without the logged-in account
        shutil.copy(os.path.join(az_env["AZURE_CONFIG_DIR"], name), tmp_path / name)
    login = az("login", "--service-principal", "-u", emulator.ready["client_id"], "-p", "not-the-secret",
               "--tenant", emulator.ready["tenant"], check=False,
               env_extra={"AZURE_CONFIG_DIR": str(tmp_path)})
    assert login.returncode != 0
    assert "AADSTS7000215" in login.stderr


def _ssh_cert_data(public_key):
    """The request data as the `ssh` extension builds it (src/ssh/azext_ssh rsa_parser.py, _prepare_jwk_data):
    the key's SSH wire fields in padded base64url, kid = sha256(n + e)."""
    blob = base64.b64decode(public_key.public_bytes(serialization.Encoding.OpenSSH,
                                                    serialization.PublicFormat.OpenSSH).split()[1])
    fields = []
    while blob:
        length = int.from_bytes(blob[:4], "big")
        fields.append(blob[4:4 + length])
        blob = blob[4 + length:]
    n, e = (base64.urlsafe_b64encode(field).decode() for field in (fields[2], fields[1]))
    kid = hashlib.sha256((n + e).encode()).hexdigest()
    return {"token_type": "ssh-cert", "req_cnf": json.dumps({"kty": "RSA", "n": n, "e": e, "kid": kid}),
            "key_id": kid}


def test_ssh_certificate_through_profile_get_msal_token(az_env, emulator, tmp_path):
    """What the extension does for `--auth-type aad`: Profile.get_msal_token with an ssh-cert request."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    data = _ssh_cert_data(key.public_key())
    script = textwrap.dedent(f"""
        from azure.cli.core import get_default_cli
        from azure.cli.core._profile import Profile
        data = {data!r}
        _, cert = Profile(cli_ctx=get_default_cli()).get_msal_token([{SSH_CERT_SCOPE!r}], data)
        print(cert)
    """)
    run = subprocess.run([sys.executable, "-c", script], env=az_env, capture_output=True, text=True, timeout=60,
                         check=False)
    assert run.returncode == 0, run.stderr
    cert_file = tmp_path / "id_rsa-cert.pub"
    cert_file.write_text(f"ssh-rsa-cert-v01@openssh.com {run.stdout.strip()}\n")
    shown = subprocess.run(["ssh-keygen", "-L", "-f", str(cert_file)], capture_output=True, text=True, check=True)
    lines = [line.strip() for line in shown.stdout.splitlines()]
    assert "Type: ssh-rsa-cert-v01@openssh.com user certificate" in lines
    assert lines[lines.index("Principals:") + 1] == emulator.ready["login_name"]
    user_ca = open(emulator.ready["user_ca_pub"], encoding="utf-8").read().split()
    ca_fingerprint = subprocess.run(["ssh-keygen", "-l", "-f", emulator.ready["user_ca_pub"]], capture_output=True,
                                    text=True, check=True).stdout.split()[1]
    assert any(line.startswith("Signing CA:") and ca_fingerprint in line for line in lines), (user_ca, lines)
    # the certified key is the one we sent
    certified = serialization.load_ssh_public_identity(cert_file.read_bytes()).public_key()
    assert certified.public_numbers() == key.public_key().public_numbers()


def test_ssh_cert_request_needs_a_valid_jwk(arm):
    answer = arm.fetch_token(arm.ready["client_secret"], token_type="ssh-cert", req_cnf="not a jwk",
                             scope=SSH_CERT_SCOPE)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"


def _rfc7518_minimal(data):
    jwk = json.loads(data["req_cnf"])
    for name in ("n", "e"):
        number = int.from_bytes(base64.urlsafe_b64decode(jwk[name]), "big")
        jwk[name] = base64.urlsafe_b64encode(number.to_bytes((number.bit_length() + 7) // 8, "big")).rstrip(
            b"=").decode()
    jwk["kid"] = hashlib.sha256(f"{jwk['n']}.{jwk['e']}".encode()).hexdigest()
    return dict(data, req_cnf=json.dumps(jwk, separators=(",", ":")), key_id=jwk["kid"])


def _without_the_zero_byte(data):
    jwk = json.loads(data["req_cnf"])
    jwk["n"] = base64.urlsafe_b64encode(base64.urlsafe_b64decode(jwk["n"])[1:]).decode()
    jwk["kid"] = hashlib.sha256((jwk["n"] + jwk["e"]).encode()).hexdigest()
    return dict(data, req_cnf=json.dumps(jwk), key_id=jwk["kid"])


@pytest.mark.parametrize("tamper, reason", [
    (_rfc7518_minimal, "json.dumps"),
    (lambda d: dict(d, req_cnf=json.dumps(json.loads(d["req_cnf"]), separators=(",", ":"))), "json.dumps"),
    (lambda d: dict(d, req_cnf=d["req_cnf"].replace('=", "e"', '", "e"')), "padded base64url"),
    (lambda d: dict(d, key_id="another-key"), "sha256(n + e)"),
    (_without_the_zero_byte, "SSH mpint"),
])
def test_ssh_cert_request_must_be_built_as_the_ssh_extension_builds_it(arm, tamper, reason):
    """Real Entra is only known to answer the ssh extension's encoding; the previous RFC-style one is refused."""
    data = tamper(_ssh_cert_data(rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()))
    answer = arm.fetch_token(arm.ready["client_secret"], scope=SSH_CERT_SCOPE, **data)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"
    assert reason in answer.json()["error_description"]


def test_request_log_never_holds_secrets(az, emulator):
    az("network", "vnet", "show", "-g", "demo-rg", "-n", "demo-vnet", "-o", "none")
    logged = emulator.get("requests")
    assert logged.status_code == 200
    text = logged.text
    entries = logged.json()["requests"]
    assert any(e["path"].endswith("/oauth2/v2.0/token") for e in entries)
    assert any("virtualNetworks/demo-vnet" in e["path"] for e in entries)
    secrets = emulator.get("secrets").json()["secrets"]
    assert emulator.ready["client_secret"] in secrets and len(secrets) > 1
    leaked = [s for s in secrets if s in text]
    assert leaked == []
    assert "client_secret=<redacted>" in text


@pytest.mark.parametrize("path", ["/metadata/endpoints", "//metadata/endpoints"])
def test_cloud_metadata_is_one_object(emulator, path):
    answer = emulator.get(path, params={"api-version": "2022-09-01"})
    body = answer.json()
    assert isinstance(body, dict)
    assert body["resourceManager"] == emulator.url
    assert body["authentication"]["loginEndpoint"] == emulator.url.rstrip("/")
    assert json.dumps(body["suffixes"])


def _valid_before(certificate_body):
    line = f"ssh-rsa-cert-v01@openssh.com {certificate_body}".encode()
    return serialization.load_ssh_public_identity(line).valid_before


def test_ssh_certificate_lifetime_can_be_made_short_or_already_expired_for_tests(arm, emulator):
    import time
    data = _ssh_cert_data(rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key())
    try:
        for seconds in (120, -30):
            emulator.post("/_emulator/ssh-cert-lifetime", json={"seconds": seconds}).raise_for_status()
            answer = arm.fetch_token(arm.ready["client_secret"], scope=SSH_CERT_SCOPE, **data).json()
            assert answer["expires_in"] == seconds
            assert abs(_valid_before(answer["access_token"]) - (time.time() + seconds)) <= 5
        assert emulator.post("/_emulator/ssh-cert-lifetime", json={"seconds": "1h"}).status_code == 400
    finally:
        emulator.post("/_emulator/ssh-cert-lifetime", json={"seconds": None}).raise_for_status()
    answer = arm.fetch_token(arm.ready["client_secret"], scope=SSH_CERT_SCOPE, **data).json()
    assert answer["expires_in"] == 3600


def test_a_test_can_have_an_expired_certificate_minted_for_its_own_key(emulator):
    import time
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    public = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    answer = emulator.post("/_emulator/ssh-cert", json={"public_key": public, "seconds": -30})
    answer.raise_for_status()
    certificate = serialization.load_ssh_public_identity(answer.json()["certificate"].encode())
    assert certificate.valid_after < certificate.valid_before < time.time()
    assert certificate.public_key().public_numbers() == key.public_numbers()
    assert certificate.valid_principals == [emulator.ready["login_name"].encode()]
    assert emulator.post("/_emulator/ssh-cert", json={"public_key": "nonsense"}).status_code == 400
