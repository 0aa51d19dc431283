"""Entra ID and `az login` against the emulator, through the real `az`, MSAL and OpenSSH tools."""
import base64
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
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


def _jwk(public_key):
    numbers = public_key.public_numbers()

    def b64(value):
        return base64.urlsafe_b64encode(value.to_bytes((value.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()
    return {"kty": "RSA", "n": b64(numbers.n), "e": b64(numbers.e), "kid": "test-kid-1"}


def test_ssh_certificate_through_profile_get_msal_token(az_env, emulator, tmp_path):
    """What the extension does for `--auth-type aad`: Profile.get_msal_token with an ssh-cert request."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = _jwk(key.public_key())
    script = textwrap.dedent(f"""
        import json
        from azure.cli.core import get_default_cli
        from azure.cli.core._profile import Profile
        data = {{"token_type": "ssh-cert", "req_cnf": json.dumps({jwk!r}), "key_id": "test-kid-1"}}
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
    from cryptography.hazmat.primitives import serialization  # pylint: disable=import-outside-toplevel
    certified = serialization.load_ssh_public_identity(cert_file.read_bytes()).public_key()
    assert certified.public_numbers() == key.public_key().public_numbers()


def test_ssh_cert_request_needs_a_valid_jwk(arm):
    answer = arm.fetch_token(arm.ready["client_secret"], token_type="ssh-cert", req_cnf="not a jwk",
                             scope=SSH_CERT_SCOPE)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"


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
