"""pytest fixtures over ``sandbox``: one emulator subprocess per session and the real ``az`` logged in to it.

Imported by ``tests/conftest.py`` and ``emulator/tests/conftest.py``:

- ``emulator`` (session): ``EmulatorProcess`` (``.state_dir``, ``.ready``, ``.url``, ``.ca_bundle``,
  ``.get/.post/.delete("/_emulator/...")``, ``.set_vm_endpoint(vm_name, port, host, target_port)``).
- ``az_env`` (session): environment dict with a fresh ``AZURE_CONFIG_DIR`` logged in to the emulator.
- ``az`` (session; stateless): ``az(*args, check=True, timeout=120, input=None, env_extra=None) -> CompletedProcess``
  with ``.json``.
"""
from __future__ import annotations

# pylint: disable=redefined-outer-name  # pytest fixtures name their dependencies

import pytest

from .sandbox import AzCli, EmulatorProcess, az_environment


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    process = EmulatorProcess(tmp_path_factory.mktemp("emulator")).start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def az_env(emulator, tmp_path_factory):
    return az_environment(emulator, tmp_path_factory.mktemp("azure-config"))


@pytest.fixture(scope="session")  # stateless, so module-scoped fixtures may use it too
def az(az_env):
    return AzCli(az_env)
