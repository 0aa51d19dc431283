"""The sshd sandbox signs users in the three ways the extension uses: key, password, user certificate."""
import os
import shutil
import subprocess

import pytest

from bastion_emulator.testing.sshd import start_sshd, sshd_available

pytestmark = pytest.mark.skipif(not sshd_available() or not shutil.which("ssh"),
                                reason="OpenSSH server/client is not installed")

CERT_USER = "bnative-cert"


@pytest.fixture(scope="module")
def user_ca(tmp_path_factory):
    ca = tmp_path_factory.mktemp("user-ca") / "ca"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ca)], check=True)
    return ca


@pytest.fixture(scope="module")
def server(tmp_path_factory, user_ca):
    handle = start_sshd(tmp_path_factory.mktemp("sshd"), user_ca_pub=f"{user_ca}.pub",
                        login_user=CERT_USER if os.geteuid() == 0 else None)
    yield handle
    handle.stop()


def ssh(server, tmp_path, user, *options, command="id -un", password=None):
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(server.known_hosts_line() + "\n")
    argv = ["ssh", "-p", str(server.port), "-o", f"UserKnownHostsFile={known_hosts}",
            "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=10", *options, f"{user}@{server.host}", command]
    if password is not None:
        argv = ["sshpass", "-e", *argv]
    env = dict(os.environ, SSHPASS=password or "")
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env, check=False)


def test_key_sign_in_with_pinned_host_key(server, tmp_path):
    result = ssh(server, tmp_path, server.user, "-i", str(server.client_key), "-o", "BatchMode=yes",
                 "-o", "IdentitiesOnly=yes")
    assert result.returncode == 0, result.stderr + server.log_text()[-2000:]
    assert result.stdout.strip() == server.user
    assert "Accepted publickey for " + server.user in server.log_text()


def test_password_sign_in(server, tmp_path):
    if server.password is None or not shutil.which("sshpass"):
        pytest.skip("a password user needs root (and sshpass)")
    result = ssh(server, tmp_path, server.user, "-o", "PubkeyAuthentication=no",
                 "-o", "PreferredAuthentications=password", password=server.password)
    assert result.returncode == 0, result.stderr
    wrong = ssh(server, tmp_path, server.user, "-o", "PubkeyAuthentication=no",
                "-o", "PreferredAuthentications=password", "-o", "NumberOfPasswordPrompts=1", password="wrong")
    assert wrong.returncode == 255 and "Permission denied" in wrong.stderr


def test_user_certificate_sign_in(server, tmp_path, user_ca):
    if server.cert_user is None:
        pytest.skip("a certificate user needs root")
    key = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    subprocess.run(["ssh-keygen", "-q", "-s", str(user_ca), "-I", "test", "-n", server.cert_user, "-V", "+5m",
                    f"{key}.pub"], check=True)
    result = ssh(server, tmp_path, server.cert_user, "-i", str(key), "-o", f"CertificateFile={key}-cert.pub",
                 "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes")
    assert result.returncode == 0, result.stderr + server.log_text()[-2000:]
    assert result.stdout.strip() == server.cert_user
    # A certificate for someone else's principal is refused.
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    subprocess.run(["ssh-keygen", "-q", "-s", str(user_ca), "-I", "test", "-n", "someone-else", "-V", "+5m",
                    f"{other}.pub"], check=True)
    refused = ssh(server, tmp_path, server.cert_user, "-i", str(other), "-o", f"CertificateFile={other}-cert.pub",
                  "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes")
    assert refused.returncode == 255
