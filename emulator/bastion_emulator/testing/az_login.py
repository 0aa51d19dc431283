"""Point the real ``az`` (the current ``AZURE_CONFIG_DIR``) at a running emulator and log in offline."""
from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path


def az_executable() -> str:
    """The ``az`` next to this interpreter (the project's venv), else the one on PATH."""
    candidate = Path(sys.executable).parent / "az"
    return str(candidate) if candidate.exists() else "az"


def read_ready(state_dir: str | Path) -> dict:
    return json.loads((Path(state_dir) / "ready.json").read_text(encoding="utf-8"))


def login_commands(ready: dict) -> list[list[str]]:
    """The ``az`` invocations that register the emulator as a cloud and log the service principal in."""
    name = ready["cloud_name"]
    return [
        # The graph endpoint given: an older az's `cloud register` (2.67) reads the metadata's api-version
        # 2015-01-01 shape, takes the graph endpoint from `graphEndpoint` only and refuses a cloud without it;
        # 2.91 reads the 2022-09-01 shape and accepts it given as well.
        ["cloud", "register", "-n", name, "--endpoint-resource-manager", ready["arm"],
         "--endpoint-active-directory-graph-resource-id", f"{ready['arm'].rstrip('/')}/graph/"],
        ["cloud", "set", "-n", name],
        ["config", "set", "core.instance_discovery=false", "core.collect_telemetry=false",
         # a cloud outside Microsoft's three has no known SSH certificate scope: bastion-native asks for it
         f"bastion_native.ssh_certificate_scope={ready['arm'].rstrip('/')}/CheckMyAccess/Linux/.default"],
        # "--password=..." so that a secret starting with "-" is not read as an option.
        ["login", "--service-principal", "-u", ready["client_id"], f"--password={ready['client_secret']}",
         "--tenant", ready["tenant"], "--output", "none"],
    ]


def trust_bundle(state_dir: str | Path, ready: dict, env: dict) -> str:
    """A CA bundle of the emulator's CA and what this shell trusted before (its REQUESTS_CA_BUNDLE, else certifi's
    public roots, requests' and pip's default). REQUESTS_CA_BUNDLE replaces the trusted set of every requests-based
    program in the shell: the emulator's CA alone made `az extension add` (pip) fail to verify PyPI."""
    import certifi  # pylint: disable=import-outside-toplevel  # requests' own dependency
    before = env.get("REQUESTS_CA_BUNDLE")
    if not before or Path(before).resolve() == Path(ready["ca_bundle"]).resolve() or not Path(before).is_file():
        before = certifi.where()
    parts = [Path(ready["ca_bundle"]).read_text(encoding="utf-8"), Path(before).read_text(encoding="utf-8")]
    text = "\n".join(part.rstrip("\n") for part in parts) + "\n"
    # one file per content (logins from shells that trusted different sets never overwrite each other's), written
    # whole before it takes its name
    path = Path(state_dir) / f"ca-bundle-{hashlib.sha256(text.encode()).hexdigest()[:12]}.pem"
    if not path.exists():
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    return str(path)


def az_login(state_dir: str | Path, env: dict | None = None, timeout: float = 120, az: str | None = None) -> dict:
    """Run the login commands with ``az`` (default: az_executable()); returns the environment additions
    (``REQUESTS_CA_BUNDLE``: see trust_bundle, ``AZURE_CONFIG_DIR``)."""
    ready = read_ready(state_dir)
    env = dict(os.environ if env is None else env)
    env["REQUESTS_CA_BUNDLE"] = trust_bundle(state_dir, ready, env)
    env.setdefault("AZURE_CORE_COLLECT_TELEMETRY", "false")
    config_dir = env.get("AZURE_CONFIG_DIR") or str(Path.home() / ".azure")
    az = az or az_executable()
    for args in login_commands(ready):
        if args[:2] == ["cloud", "register"]:
            # a stale registration of the same name (earlier emulator run, other port) is replaced
            subprocess.run([az, "cloud", "set", "-n", "AzureCloud"], env=env, capture_output=True, check=False,
                           timeout=timeout)
            subprocess.run([az, "cloud", "unregister", "-n", args[3]], env=env, capture_output=True, check=False,
                           timeout=timeout)
        result = subprocess.run([az, *args], env=env, capture_output=True, text=True, check=False, timeout=timeout)
        if result.returncode != 0:
            shown = " ".join(shlex.quote(a) for a in args[:2])
            raise RuntimeError(f"az {shown} failed ({result.returncode}): {result.stderr.strip()}")
    return {"REQUESTS_CA_BUNDLE": env["REQUESTS_CA_BUNDLE"], "AZURE_CONFIG_DIR": config_dir}


def export_lines(env_additions: dict) -> str:
    return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in env_additions.items())
