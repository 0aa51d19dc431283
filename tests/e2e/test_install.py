"""The two install paths users use: the wheel through `az extension add --source`, and the dev extension."""

import glob
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AZ = os.path.join(os.path.dirname(sys.executable), 'az')
pytestmark = pytest.mark.e2e


def _clean_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith('AZURE_')}
    env.update(AZURE_CONFIG_DIR=str(tmp_path / 'config'), AZURE_EXTENSION_DIR=str(tmp_path / 'extensions'),
               AZURE_CORE_COLLECT_TELEMETRY='false')
    return env


def test_wheel_builds_and_installs_with_az_extension_add(tmp_path):
    dist = tmp_path / 'dist'
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q',
                    '-w', str(dist), REPO], check=True, capture_output=True, timeout=300)
    wheels = glob.glob(str(dist / '*.whl'))
    assert [os.path.basename(w) for w in wheels] == ['bastion_native-0.1.0-py3-none-any.whl']

    import zipfile
    names = zipfile.ZipFile(wheels[0]).namelist()
    assert 'azext_bastion_native/azext_metadata.json' in names
    assert not [n for n in names if n.startswith(('tests/', 'bastion_emulator/', 'emulator/', 'bench/'))]

    env = _clean_env(tmp_path)
    subprocess.run([AZ, 'extension', 'add', '--source', wheels[0], '--yes'], env=env, check=True,
                   capture_output=True, text=True, timeout=600)
    shown = subprocess.run([AZ, 'extension', 'show', '--name', 'bastion-native', '--query', 'version', '-o', 'tsv'],
                           env=env, capture_output=True, text=True, timeout=120, check=True)
    assert shown.stdout.strip() == '0.1.0'
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
