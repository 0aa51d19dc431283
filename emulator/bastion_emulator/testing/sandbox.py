"""Run the emulator as a real subprocess and the real ``az`` against it (tests and the demo script use this).

    with EmulatorProcess(state_dir) as emu:
        env = az_environment(emu, config_dir)      # fresh AZURE_CONFIG_DIR, logged in
        az = AzCli(env)
        az("network", "bastion", "list").json
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from .az_login import az_executable, az_login

REPO_ROOT = Path(__file__).resolve().parents[3]


class EmulatorProcess:
    """``python -m bastion_emulator serve --state-dir DIR`` in the background; stopped with SIGTERM."""

    def __init__(self, state_dir: str | Path, *, seed: str | None = None, port: int = 0, lro_seconds: float = 0.2,
                 python: str = sys.executable):
        self.state_dir = Path(state_dir)
        self._args = [python, "-m", "bastion_emulator", "serve", "--state-dir", str(self.state_dir),
                      "--port", str(port), "--lro-seconds", str(lro_seconds)]
        if seed:
            self._args += ["--seed", str(seed)]
        self._process: subprocess.Popen | None = None
        self.ready: dict = {}
        self._session = requests.Session()

    @property
    def url(self) -> str:
        return self.ready["arm"]

    @property
    def ca_bundle(self) -> str:
        return self.ready["ca_bundle"]

    @property
    def log_path(self) -> Path:
        return self.state_dir / "emulator.log"

    def start(self, timeout: float = 20) -> "EmulatorProcess":
        self.state_dir.mkdir(parents=True, exist_ok=True)
        ready_file = self.state_dir / "ready.json"
        ready_file.unlink(missing_ok=True)
        with open(self.log_path, "ab") as log:  # a file, not a pipe: nobody has to drain it
            self._process = subprocess.Popen(  # pylint: disable=consider-using-with
                self._args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not ready_file.exists():
            if self._process.poll() is not None:
                raise RuntimeError(f"emulator exited with {self._process.returncode}: {self._log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"emulator not ready after {timeout} s: {self._log_tail()}")
            time.sleep(0.05)
        self.ready = json.loads(ready_file.read_text(encoding="utf-8"))
        return self

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self, timeout: float = 10) -> int | None:
        if self._process is None:
            return None
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout)
        self._session.close()
        return self._process.returncode

    def __enter__(self) -> "EmulatorProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- test hooks (/_emulator/...) -------------------------------------------------------------
    def _hook_url(self, path: str) -> str:
        if not path.startswith("/"):
            path = f"/_emulator/{path}"
        return self.url.rstrip("/") + path

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        # verify per request: a REQUESTS_CA_BUNDLE in the environment would override the session's setting
        kwargs.setdefault("verify", self.ca_bundle)
        kwargs.setdefault("timeout", 10)
        return self._session.request(method, self._hook_url(path), **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json=None, **kwargs) -> requests.Response:  # pylint: disable=redefined-outer-name
        return self.request("POST", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def resource_id(self, kind: str, name: str, group: str = "demo-rg") -> str:
        """e.g. ``resource_id("Microsoft.Compute/virtualMachines", "linux-vm")``."""
        return f"/subscriptions/{self.ready['subscription']}/resourceGroups/{group}/providers/{kind}/{name}"

    def set_vm_endpoint(self, vm_name: str, port: int, host: str, target_port: int) -> None:
        answer = self.post("vm-endpoints", {"vm_id": self.resource_id("Microsoft.Compute/virtualMachines", vm_name),
                                            "port": port, "host": host, "target_port": target_port})
        answer.raise_for_status()


def az_environment(emulator: EmulatorProcess, config_dir: str | Path, base_env: dict | None = None) -> dict:
    """Environment for the real ``az``: a fresh config dir logged in to ``emulator``, the extension as a dev source."""
    env = dict(os.environ if base_env is None else base_env)
    for leaked in ("AZURE_CLI_DISABLE_CONNECTION_VERIFICATION", "ACC_CLOUD", "AZURE_ACCESS_TOKEN_FILE"):
        env.pop(leaked, None)
    env.update({
        "AZURE_CONFIG_DIR": str(config_dir),
        "AZURE_EXTENSION_DEV_SOURCES": str(REPO_ROOT),
        "AZURE_CORE_COLLECT_TELEMETRY": "false",
        "AZURE_CORE_NO_COLOR": "true",
        "AZURE_CORE_SURVEY_MESSAGE": "false",
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    Path(config_dir).mkdir(parents=True, exist_ok=True)
    env.update(az_login(emulator.state_dir, env=env))
    return env


class AzCli:  # pylint: disable=too-few-public-methods
    """Calls the real ``az`` as a subprocess; the result has ``.json`` when the output is JSON."""

    def __init__(self, env: dict, executable: str | None = None):
        self.env = env
        self.executable = executable or az_executable()

    def __call__(self, *args, check: bool = True, timeout: float = 120, input=None,  # pylint: disable=redefined-builtin
                 env_extra: dict | None = None) -> subprocess.CompletedProcess:
        env = dict(self.env, **(env_extra or {}))
        result = subprocess.run([self.executable, *map(str, args)], env=env, capture_output=True, text=True,
                                timeout=timeout, input=input, check=False)
        try:
            result.json = json.loads(result.stdout) if result.stdout.strip() else None
        except ValueError:
            result.json = None
        if check and result.returncode != 0:
            raise AssertionError(f"az {' '.join(map(str, args))} failed ({result.returncode}):\n"
                                 f"{result.stderr[-3000:]}")
        return result
