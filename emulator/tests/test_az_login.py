"""`python -m bastion_emulator az-login` as the README has users run it: `eval "$(... az-login ...)"` in their shell,
after which the same shell still trusts what it trusted before (pip, as `az extension add` runs it, reaches a
package index over TLS) as well as the emulator."""
import http.server
import os
import shlex
import ssl
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import certifi
import pytest

from bastion_emulator.certs import load_or_create
from bastion_emulator.testing.az_login import az_executable


def _exports(output: str) -> dict:
    """The variables an `eval` of az-login's output sets."""
    exported = {}
    for line in output.splitlines():
        words = shlex.split(line)
        assert words[0] == "export", line
        name, _, value = words[1].partition("=")
        exported[name] = value
    return exported


def _az_login(emulator, env: dict) -> dict:
    result = subprocess.run([sys.executable, "-m", "bastion_emulator", "az-login", "--state-dir",
                             str(emulator.state_dir)], env=env, capture_output=True, text=True, timeout=180,
                            check=False)
    assert result.returncode == 0, result.stderr
    return dict(env, **_exports(result.stdout))


def _wheel(directory: Path) -> Path:
    path = directory / "demo_pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("demo_pkg/__init__.py", "")
        wheel.writestr("demo_pkg-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0\n")
        wheel.writestr("demo_pkg-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                                       "Tag: py3-none-any\n")
        wheel.writestr("demo_pkg-1.0.dist-info/RECORD", "")
    return path


@pytest.fixture
def package_index(tmp_path):
    """A package index over HTTPS whose certificate another CA than the emulator's signs (PyPI's stand-in):
    (index URL, that CA's PEM file)."""
    keys = load_or_create(tmp_path / "index-tls")
    root = tmp_path / "index"
    (root / "simple" / "demo-pkg").mkdir(parents=True)
    wheel = _wheel(root)
    (root / "simple" / "demo-pkg" / "index.html").write_text(
        f'<html><body><a href="../../{wheel.name}">{wheel.name}</a></body></html>', encoding="utf-8")
    handler = lambda *args: http.server.SimpleHTTPRequestHandler(*args, directory=str(root))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.socket = keys.server_ssl_context().wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}/simple/", keys.ca_pem
    server.shutdown()
    server.server_close()


def _pip_download(env: dict, index: str, dest: Path) -> subprocess.CompletedProcess:
    # PIP_CONFIG_FILE: pip as a user has it, not this machine's pip.conf (which pins its own cert and index)
    return subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir",
                           "--disable-pip-version-check", "--index-url", index, "-d", str(dest), "demo-pkg"],
                          env=dict(env, PIP_CONFIG_FILE=os.devnull), capture_output=True, text=True, timeout=120,
                          check=False)


def test_after_az_login_pip_still_verifies_what_the_shell_trusted_and_az_reaches_the_emulator(
        emulator, package_index, tmp_path):
    index, index_ca = package_index
    shell = dict(os.environ, AZURE_CONFIG_DIR=str(tmp_path / "az"), REQUESTS_CA_BUNDLE=str(index_ca))
    assert _pip_download(shell, index, tmp_path / "before").returncode == 0
    after = _az_login(emulator, shell)
    downloaded = _pip_download(after, index, tmp_path / "after")
    assert downloaded.returncode == 0, downloaded.stderr[-2000:]
    assert (tmp_path / "after" / "demo_pkg-1.0-py3-none-any.whl").exists()
    account = subprocess.run([az_executable(), "account", "show", "--query", "id", "-o", "tsv"], env=after,
                             capture_output=True, text=True, timeout=120, check=False)
    assert account.stdout.strip() == emulator.ready["subscription"], account.stderr


def test_without_a_bundle_of_its_own_the_shell_keeps_the_public_roots(emulator, tmp_path):
    shell = {k: v for k, v in os.environ.items() if k != "REQUESTS_CA_BUNDLE"}
    after = _az_login(emulator, dict(shell, AZURE_CONFIG_DIR=str(tmp_path / "az")))

    def trusted(bundle):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(bundle)
        return {bytes(cert) for cert in context.get_ca_certs(binary_form=True)}
    exported = trusted(after["REQUESTS_CA_BUNDLE"])
    assert trusted(certifi.where()) <= exported
    assert trusted(emulator.ca_bundle) <= exported
