"""Entra ID for a fleet end to end: `ssh-config --vm-resource-group --auth-type aad` writes blocks with the user's
key pair and Entra SSH certificate and the principal as the login name; plain ssh and Ansible sign in with them at
the fleet's real sshds (which trust the emulator's Entra user CA), and a certificate that has expired is renewed by
the blocks' `Match exec` line before ssh reads it."""

import json
import os
import shutil
import stat
import subprocess
import sys
import time

import pytest

from bastion_emulator.testing.fleet import FLEET_RG, start_fleet
from bastion_emulator.testing.sshd import sshd_available
from azext_bastion_native.agent import entra_refresh
from tests.conftest import make_short_dir
from tests.e2e.tunnel_helpers import HOST, RG

pytestmark = pytest.mark.e2e

ANSIBLE = os.path.join(os.path.dirname(sys.executable), 'ansible')
VMS = ['web-1', 'web-2', 'web-3']


@pytest.fixture(scope='module')
def fleet(tmp_path_factory):
    if not sshd_available():
        pytest.skip('OpenSSH server (sshd) is not installed')
    if os.geteuid() != 0:
        pytest.skip("the Entra principal's account is made on the machine: root only")
    running = start_fleet(tmp_path_factory.mktemp('entra-fleet'), count=len(VMS))
    runtime = make_short_dir('bn-runtime-')     # the agent's socket goes in it
    running.az_env['XDG_RUNTIME_DIR'] = str(runtime)
    yield running
    running.az('network', 'bastion', 'agent', 'stop', check=False)
    running.stop()
    shutil.rmtree(runtime, ignore_errors=True)


@pytest.fixture(scope='module')
def written(fleet, tmp_path_factory):
    home = tmp_path_factory.mktemp('entra-home')
    config, inventory = home / 'config', home / 'inventory.yml'
    users_lines = f"Host *\n    UserKnownHostsFile {home / 'known_hosts'}\n"
    config.write_text(users_lines, encoding='utf-8')
    result = fleet.az('network', 'bastion', 'ssh-config', '-g', RG, '-n', HOST, '--vm-resource-group', FLEET_RG,
                      '--auth-type', 'aad', '--file', str(config), '--inventory', str(inventory))
    directory = os.path.join(fleet.az_env['AZURE_CONFIG_DIR'], entra_refresh.DIRECTORY_NAME)
    return {'home': home, 'config': config, 'inventory': inventory, 'summary': result.json,
            'certificate': os.path.join(directory, entra_refresh.CERTIFICATE_NAME),
            'key': os.path.join(directory, entra_refresh.KEY_NAME), 'directory': directory}


def _ssh(fleet, written, alias, *command):
    return subprocess.run(['ssh', '-F', str(written['config']), '-o', 'BatchMode=yes', alias, *command],
                          env=fleet.az_env, capture_output=True, text=True, timeout=120, check=False)


def _accepted_certificates(fleet, vm):
    return [line for line in fleet.sshds[vm].log_text().splitlines()
            if 'Accepted publickey for ' in line and 'RSA-CERT' in line]


def test_blocks_name_the_principal_the_key_and_the_certificate_privately_kept(fleet, written):
    assert written['summary']['added'] == VMS
    text = written['config'].read_text(encoding='utf-8')
    login = fleet.emulator.ready['login_name']
    for vm in VMS:
        block = text.split(f'Host {vm}\n', 1)[1].split('# <<<', 1)[0]
        assert f'    User {login.lower()}\n' in block
        assert f"    IdentityFile {written['key']}\n" in block
        assert f"    CertificateFile {written['certificate']}\n" in block
        assert f'Match originalhost {vm} exec "' in block and 'entra_refresh.py' in block
    assert stat.S_IMODE(os.stat(written['directory']).st_mode) == 0o700
    for path in (written['key'], written['certificate']):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(written['certificate'], encoding='ascii') as handle:
        certificate = handle.read()
    assert not entra_refresh.renewal_due(certificate, time.time())
    # never printed: not in the config, the summary or the inventory
    body = certificate.split()[1]
    for where in (text, json.dumps(written['summary']), written['inventory'].read_text(encoding='utf-8')):
        assert body not in where


def test_plain_ssh_signs_in_as_the_entra_principal_with_the_certificate(fleet, written):
    before = len(_accepted_certificates(fleet, 'web-2'))
    result = _ssh(fleet, written, 'web-2', 'echo $BASTION_VM $(id -un)')
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ['web-2', fleet.emulator.ready['login_name']]
    accepted = _accepted_certificates(fleet, 'web-2')
    assert len(accepted) == before + 1 and f"for {fleet.emulator.ready['login_name']} " in accepted[-1]


def _put_expired_certificate(fleet, written):
    """An expired certificate of the emulator's Entra for the blocks' key, in place of the valid one. The agent is
    stopped first: a new one's first renewal round comes a minute after it starts, so what renews it is the blocks'
    Match exec."""
    fleet.az('network', 'bastion', 'agent', 'stop')
    with open(written['key'] + '.pub', encoding='ascii') as handle:
        public_key = handle.read().strip()
    answer = fleet.emulator.post('/_emulator/ssh-cert', json={'public_key': public_key, 'seconds': -30})
    answer.raise_for_status()
    expired = answer.json()['certificate']
    assert entra_refresh.valid_before(expired) < time.time()
    descriptor = os.open(written['certificate'], os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(descriptor, 'w', encoding='ascii') as handle:
        handle.write(expired + '\n')
    return expired


def test_an_expired_certificate_in_place_is_renewed_before_ssh_reads_it(fleet, written):
    expired = _put_expired_certificate(fleet, written)

    result = _ssh(fleet, written, 'web-3', 'echo $BASTION_VM')
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ['web-3']
    with open(written['certificate'], encoding='ascii') as handle:
        renewed = handle.read()
    assert renewed.strip() != expired and entra_refresh.valid_before(renewed) > time.time()
    assert stat.S_IMODE(os.stat(written['certificate']).st_mode) == 0o600


def test_ansible_pings_every_vm_over_the_aad_blocks_with_an_expired_certificate_in_place(fleet, written):
    _put_expired_certificate(fleet, written)        # Ansible's forks run their ssh (and Match exec) at once
    env = dict(fleet.az_env, ANSIBLE_LOCAL_TEMP=str(written['home'] / 'ansible-tmp'),
               ANSIBLE_SSH_CONTROL_PATH_DIR=str(written['home'] / 'cp'))
    ping = subprocess.run([ANSIBLE, '-i', str(written['inventory']), 'all', '-m', 'ping'], env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert ping.returncode == 0, ping.stdout[-3000:] + ping.stderr[-3000:]
    assert ping.stdout.count('SUCCESS') == len(VMS)
    with open(written['certificate'], encoding='ascii') as handle:
        assert entra_refresh.valid_before(handle.read()) > time.time()
    assert sorted(os.listdir(written['directory'])) == ['id_rsa', 'id_rsa-cert.pub', 'id_rsa.pub',
                                                        entra_refresh.LOCK_NAME]     # no temporary left behind
    subprocess.run(['ssh', '-O', 'exit', '-o', f"ControlPath={written['home'] / 'cp'}/%C", 'x'], check=False,
                   capture_output=True, env=env)


def test_one_vm_block_with_aad_and_what_does_not_go_with_it(fleet, written):
    printed = fleet.az('network', 'bastion', 'ssh-config', '-g', RG, '-n', HOST, '--target-resource-id',
                       fleet.vm_id('web-1'), '--auth-type', 'aad', '--host-alias', 'entra-web-1')
    assert printed.returncode == 0, printed.stderr
    assert f"    User {fleet.emulator.ready['login_name']}\n" in printed.stdout
    assert f"    CertificateFile {written['certificate']}\n" in printed.stdout
    assert 'Match originalhost entra-web-1 exec "' in printed.stdout
    with open(written['certificate'], encoding='ascii') as handle:
        assert handle.read().split()[1] not in printed.stdout + printed.stderr
    refused = fleet.az('network', 'bastion', 'ssh-config', '-g', RG, '-n', HOST, '--vm-resource-group', FLEET_RG,
                       '--auth-type', 'aad', '--username', 'someone', check=False)
    assert refused.returncode != 0 and '--username does not go with --auth-type aad' in refused.stderr
    assert 'Traceback' not in refused.stderr
