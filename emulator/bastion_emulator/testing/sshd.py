"""A real OpenSSH server on a loopback port, standing in for a Linux VM's sshd.

``start_sshd(workdir)`` writes a private configuration (own host key, own authorised keys, optional
``TrustedUserCAKeys`` for Entra-style user certificates), runs ``sshd -D -e`` in the foreground as a child
process and returns an :class:`SshdHandle`. Run as root it also makes a password user (system account
``bnative`` with a random password, reused when present) so password sign-in can be tested; otherwise the
current user is the login user and there is no password.
"""
from __future__ import annotations

import getpass
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
PASSWORD_USER = "bnative"
START_TIMEOUT = 10.0


def sshd_available() -> bool:
    return SSHD is not None and shutil.which("ssh-keygen") is not None


@dataclass
class SshdHandle:
    host: str
    port: int
    user: str                   # account for password and key sign-in
    password: str | None        # None when no password user could be made (not root)
    client_key: Path            # private key authorised for `user` (and for `cert_user`)
    host_key_pub: str           # "ssh-ed25519 AAAA..." line, for known_hosts
    cert_user: str | None       # account whose name a user certificate's principal must be (login_user)
    workdir: Path
    process: subprocess.Popen
    log_path: Path
    keys_dir: Path

    def known_hosts_line(self) -> str:
        return f"[{self.host}]:{self.port} {self.host_key_pub}"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if not self.keys_dir.is_relative_to(self.workdir):
            shutil.rmtree(self.keys_dir, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _keygen(path: Path, comment: str) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                   check=True, stdin=subprocess.DEVNULL, capture_output=True)


def _ensure_system_user(name: str) -> str:
    """Create (or reuse) a local account with a random password; returns the password.

    The password is kept in a root-only file and reused, so that test sessions running side by side (two
    developers, or CI beside a developer) do not change it under each other."""
    created = False
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", name], check=True, capture_output=True)
        created = True
    saved = Path("/root/.cache/bastion-native") / f"{name}.password"
    if saved.is_file() and not created:
        return saved.read_text(encoding="utf-8").strip()
    password = secrets.token_urlsafe(18)
    # chpasswd reads "user:password" on stdin, so the password never shows in a process list.
    subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True, capture_output=True)
    saved.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(saved, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(password)
    return password


def _authorized_keys_dir(workdir: Path, is_root: bool) -> Path:
    """Where sshd reads authorised keys. sshd reads them as the target user, who cannot enter a root-only
    pytest temp dir, so as root they go to a world-traversable directory of their own (removed on stop)."""
    if not is_root:
        keys_dir = workdir / "authorized_keys"
        keys_dir.mkdir(exist_ok=True)
        return keys_dir
    keys_dir = Path(tempfile.mkdtemp(prefix="bastion-sshd-keys-"))
    keys_dir.chmod(0o755)
    return keys_dir


def _write_config(workdir: Path, port: int, host_key: Path, keys_dir: Path, password_auth: bool,
                  user_ca_pub: str | os.PathLike | None, environment: dict[str, str] | None = None,
                  sftp_directory: str | os.PathLike | None = None) -> Path:
    lines = [
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        f"HostKey {host_key}",
        f"PidFile {workdir / 'sshd.pid'}",
        f"AuthorizedKeysFile {keys_dir}/%u",
        "StrictModes no",
        "UsePAM no",
        f"PasswordAuthentication {'yes' if password_auth else 'no'}",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        "PermitRootLogin no",
        "LogLevel VERBOSE",
        "PrintMotd no",
        "Subsystem sftp internal-sftp" + (f" -d {sftp_directory}" if sftp_directory else ""),
    ]
    if environment:
        lines.append("SetEnv " + " ".join(f"{name}={value}" for name, value in environment.items()))
    if user_ca_pub:
        lines.append(f"TrustedUserCAKeys {Path(user_ca_pub).resolve()}")
    config = workdir / "sshd_config"
    config.write_text("\n".join(lines) + "\n")
    return config


def _wait_listening(process: subprocess.Popen, port: int, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited with {process.returncode}: {log_path.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"sshd did not listen on port {port} within {START_TIMEOUT}s")


def start_sshd(workdir: str | os.PathLike, user_ca_pub: str | os.PathLike | None = None,
               login_user: str | None = None, environment: dict[str, str] | None = None,
               sftp_directory: str | os.PathLike | None = None) -> SshdHandle:
    """Start sshd on a free loopback port. `login_user`: an extra account for certificate sign-in (root only).

    Several of these stand for several VMs on one machine; what tells them apart: each its own host key and
    client key, `environment` (SetEnv: variables every session sees, e.g. a marker naming the VM) and
    `sftp_directory` (where sftp and scp sessions start, so relative remote paths land in a directory of its own)."""
    if not sshd_available():
        raise RuntimeError("OpenSSH server (sshd) or ssh-keygen is not installed")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    is_root = os.geteuid() == 0
    host_key = workdir / "ssh_host_ed25519_key"
    client_key = workdir / "client_key"
    if not host_key.exists():
        _keygen(host_key, "bastion-emulator-host")
    if not client_key.exists():
        _keygen(client_key, "bastion-emulator-client")
    if is_root:
        user, password = PASSWORD_USER, _ensure_system_user(PASSWORD_USER)
        cert_user = login_user
        if login_user and login_user != PASSWORD_USER:
            _ensure_system_user(login_user)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)     # sshd's privilege-separation directory
    else:
        user, password, cert_user = getpass.getuser(), None, login_user
    keys_dir = _authorized_keys_dir(workdir, is_root)
    client_pub = (workdir / "client_key.pub").read_text()
    for account in {user, cert_user} - {None}:
        (keys_dir / account).write_text(client_pub)
        (keys_dir / account).chmod(0o644)
    port = _free_port()
    config = _write_config(workdir, port, host_key, keys_dir, password is not None, user_ca_pub, environment,
                           sftp_directory)
    log_path = workdir / "sshd.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=log, start_new_session=True)
    _wait_listening(process, port, log_path)
    return SshdHandle(host="127.0.0.1", port=port, user=user, password=password, client_key=client_key,
                      host_key_pub=(workdir / "ssh_host_ed25519_key.pub").read_text().strip(),
                      cert_user=cert_user, workdir=workdir, process=process, log_path=log_path,
                      keys_dir=keys_dir)
