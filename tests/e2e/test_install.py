"""The two install paths users use: the wheel through `az extension add --source` (its dependencies in the
extension's own folder, as users get them; `show`, `tunnel` and `ssh` run from that install), and the dev
extension."""

import glob
import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AZ = os.path.join(os.path.dirname(sys.executable), 'az')
with open(os.path.join(REPO, 'setup.py'), encoding='utf-8') as _setup:
    VERSION = re.search(r"^VERSION = '([^']+)'", _setup.read(), re.M).group(1)
pytestmark = pytest.mark.e2e


def _clean_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith('AZURE_')}
    env.update(AZURE_CONFIG_DIR=str(tmp_path / 'config'), AZURE_EXTENSION_DIR=str(tmp_path / 'extensions'),
               AZURE_CORE_COLLECT_TELEMETRY='false')
    return env


def test_wheel_builds_and_installs_with_az_extension_add(tmp_path, wheelhouse):
    dist = tmp_path / 'dist'
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q',
                    '-w', str(dist), REPO], check=True, capture_output=True, timeout=300)
    wheels = glob.glob(str(dist / '*.whl'))
    assert [os.path.basename(w) for w in wheels] == [f'bastion_native-{VERSION}-py3-none-any.whl']

    import zipfile
    names = zipfile.ZipFile(wheels[0]).namelist()
    assert 'azext_bastion_native/azext_metadata.json' in names
    assert not [n for n in names if n.startswith(('tests/', 'bastion_emulator/', 'emulator/', 'bench/'))]

    env = _clean_env(tmp_path)
    subprocess.run([AZ, 'extension', 'add', '--source', wheels[0], '--yes'], check=True,
                   env=dict(env, PIP_NO_INDEX='1', PIP_FIND_LINKS=wheelhouse),
                   capture_output=True, text=True, timeout=600)
    shown = subprocess.run([AZ, 'extension', 'show', '--name', 'bastion-native', '--query', 'version', '-o', 'tsv'],
                           env=env, capture_output=True, text=True, timeout=120, check=True)
    assert shown.stdout.strip() == VERSION
    # Every upload frame is masked with websockets' apply_mask: the install carries its C speedup, not only the
    # pure-Python fallback (several times the CPU per MiB).
    assert glob.glob(str(tmp_path / 'extensions' / 'bastion-native' / 'websockets' / 'speedups*.so'))
    helptext = subprocess.run([AZ, 'network', 'bastion', '-h'], env=env, capture_output=True, text=True,
                              timeout=120, check=True).stdout
    assert 'nsg' in helptext
    table = subprocess.run([AZ, 'network', 'bastion', 'nsg', 'show', '-o', 'tsv', '--query', '[].name'],
                           env=env, capture_output=True, text=True, timeout=120, check=True).stdout.split()
    assert 'AllowSshRdpOutbound' in table


def test_dev_extension_is_found_through_dev_sources(tmp_path):
    env = _clean_env(tmp_path)
    env['AZURE_EXTENSION_DEV_SOURCES'] = REPO
    import json
    listed = json.loads(subprocess.run([AZ, 'extension', 'list', '-o', 'json'], env=env,
                                       capture_output=True, text=True, timeout=120, check=True).stdout)
    # A dev extension is named after its folder (as in azure-cli-extensions' src/<name>), so match the path.
    mine = [ext for ext in listed if os.path.realpath(ext.get('path', '')) == os.path.realpath(REPO)]
    assert len(mine) == 1 and mine[0]['extensionType'] == 'dev'
    helptext = subprocess.run([AZ, 'network', 'bastion', '-h'], env=env, capture_output=True, text=True,
                              timeout=120, check=True).stdout
    assert 'nsg' in helptext


# -- the install users do: the wheel with its dependencies in the extension's own folder ----------------------
# azure-cli does not bundle these; in this venv they are dev dependencies, so the az under test must not see them
# (a user's az has none of them: `az extension add` puts them in the extension's folder, which azure-cli appends to
# sys.path behind its own packages, azure-core and azure-mgmt-core included).
HIDDEN_FROM_AZ = ('websockets', 'h11', 'uvloop', 'azure.mgmt.network')
SITECUSTOMIZE = '''
"""Test shim: hide the packages a user's azure-cli does not have from the venv's site-packages, and log where the
extension and its dependencies were imported from."""
import atexit, importlib.machinery, json, os, site, sys

_HIDDEN = %r
_VENV_SITE = tuple(os.path.realpath(p) for p in site.getsitepackages())


def _hidden(name):
    return any(name == h or name.startswith(h + '.') for h in _HIDDEN)


class _HideVenvCopies:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if not _hidden(name):
            return None
        search = [p for p in (path if path is not None else sys.path)
                  if not os.path.realpath(p).startswith(_VENV_SITE)]
        spec = importlib.machinery.PathFinder.find_spec(name, search, target)
        if spec is None:
            raise ModuleNotFoundError(f'No module named {name!r} (hidden from the venv by the test)', name=name)
        return spec


sys.meta_path.insert(0, _HideVenvCopies())


@atexit.register
def _log():
    names = ('azext_bastion_native',) + _HIDDEN
    found = {n: getattr(sys.modules.get(n), '__file__', None) for n in names}
    with open(os.environ['IMPORT_LOG'], 'a', encoding='utf-8') as log:
        log.write(json.dumps(found) + '\\n')
''' % (HIDDEN_FROM_AZ,)


def _pinned_requirements():
    """The runtime dependencies at the versions of this venv (the ones the rest of the suite tests)."""
    from importlib.metadata import version
    names = ('azure-mgmt-network', 'websockets', 'h11')
    return [f'{name}=={version(name)}' for name in names]


@pytest.fixture(scope='session')
def wheelhouse():
    """Wheels of the dependencies, downloaded once and kept between runs (keyed by the pins): `az extension add`
    then installs from it without the registry (PIP_NO_INDEX, PIP_FIND_LINKS)."""
    import hashlib
    pins = _pinned_requirements()
    key = hashlib.sha256(' '.join(pins).encode()).hexdigest()[:12]
    house = os.path.join(os.environ.get('XDG_CACHE_HOME', os.path.expanduser('~/.cache')), 'bastion-native',
                         f'wheelhouse-{key}')
    done = os.path.join(house, '.complete')
    import fcntl
    os.makedirs(os.path.dirname(house), exist_ok=True)
    # one download at a time: tests/compat uses this fixture too, on the other pytest-xdist worker
    with open(house + '.lock', 'w', encoding='utf-8') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(done):
            subprocess.run([sys.executable, '-m', 'pip', 'download', '-q', '--only-binary=:all:', '-d', house,
                            *pins], check=True, capture_output=True, timeout=600)
            with open(done, 'w', encoding='utf-8') as marker:
                marker.write('\n'.join(pins))
    return house


@pytest.fixture(scope='module')
def installed(emulator, wheelhouse, tmp_path_factory):
    """`az extension add --source WHEEL` into a fresh extension directory (no dev sources), logged in to the
    emulator; returns (env, extension folder, import log path)."""
    from bastion_emulator.testing.sandbox import az_environment
    root = tmp_path_factory.mktemp('wheel-install')
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q',
                    '-w', str(root / 'dist'), REPO], check=True, capture_output=True, timeout=300)
    wheel = glob.glob(str(root / 'dist' / '*.whl'))[0]
    shim = root / 'shim'
    shim.mkdir()
    (shim / 'sitecustomize.py').write_text(SITECUSTOMIZE)
    base = {k: v for k, v in os.environ.items() if not k.startswith(('AZURE_', 'PIP_'))}
    # PYTHONSAFEPATH: `python -m azure.cli` (the az script) would otherwise put the working directory, here the
    # repository, first on sys.path and import the extension from the checkout instead of the install
    base.update(AZURE_EXTENSION_DIR=str(root / 'extensions'), PYTHONPATH=str(shim), PYTHONSAFEPATH='1',
                IMPORT_LOG=str(root / 'imports.jsonl'))
    env = az_environment(emulator, root / 'config', base_env=base)
    env.pop('AZURE_EXTENSION_DEV_SOURCES')
    subprocess.run([AZ, 'extension', 'add', '--source', wheel, '--yes'], check=True, capture_output=True,
                   timeout=600, env=dict(env, PIP_NO_INDEX='1', PIP_FIND_LINKS=wheelhouse))
    return env, root / 'extensions' / 'bastion-native', root / 'imports.jsonl'


def _imports(log_path):
    import json
    with open(log_path, encoding='utf-8') as log:
        return [json.loads(line) for line in log]


def _from_the_extension_folder(log_path, folder):
    """Every hidden dependency and the extension itself came from the extension's folder, in the last az run."""
    last = _imports(log_path)[-1]
    assert last['azext_bastion_native'] and last['azext_bastion_native'].startswith(str(folder)), last
    return last


def test_show_from_the_wheel_install(installed):
    env, folder, imports = installed
    assert not [e for e in json_of([AZ, 'extension', 'list', '-o', 'json'], env) if e['extensionType'] == 'dev']
    shown = json_of([AZ, 'network', 'bastion', 'show', '-g', 'demo-rg', '-n', 'demo-bastion', '-o', 'json'], env)
    assert shown['name'] == 'demo-bastion'
    last = _from_the_extension_folder(imports, folder)
    assert last['azure.mgmt.network'].startswith(str(folder)), last


def test_tunnel_from_the_wheel_install(installed, emulator, echo_server):
    import socket
    from tests.e2e.tunnel_helpers import RunningTunnel
    env, folder, imports = installed
    emulator.set_vm_endpoint('linux-vm', 7007, echo_server.host, echo_server.port)
    vm_id = emulator.resource_id('Microsoft.Compute/virtualMachines', 'linux-vm')
    tunnel = RunningTunnel(env, '--target-resource-id', vm_id, '--resource-port', 7007, '--timeout', 30)
    try:
        with socket.create_connection((tunnel.address, tunnel.port), timeout=20) as conn:
            conn.sendall(b'through the installed wheel')
            received = b''
            while len(received) < len(b'through the installed wheel'):
                chunk = conn.recv(4096)
                assert chunk
                received += chunk
        assert received == b'through the installed wheel'
    finally:
        tunnel.stop()
    last = _from_the_extension_folder(imports, folder)
    assert last['websockets'].startswith(str(folder)) and last['h11'].startswith(str(folder)), last


def test_ssh_from_the_wheel_install(installed, sshd_linux_vm, ssh_key, tmp_path):
    env, folder, imports = installed
    result = subprocess.run(
        [AZ, 'network', 'bastion', 'ssh', '-g', 'demo-rg', '-n', 'demo-bastion', '--target-resource-id',
         sshd_linux_vm.vm_id, '--auth-type', 'ssh-key', '--username', sshd_linux_vm.sshd.user, '--ssh-key',
         str(ssh_key), '--', '-o', f'UserKnownHostsFile={tmp_path}/known_hosts', 'echo wheel-ok'],
        env=dict(env, HOME=str(tmp_path)), capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'wheel-ok' in result.stdout
    _from_the_extension_folder(imports, folder)


def json_of(args, env):
    import json
    return json.loads(subprocess.run(args, env=env, capture_output=True, text=True, timeout=120, check=True).stdout)
