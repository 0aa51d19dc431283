"""connect/ssh.py: run_ssh's order (sign-in material, tunnel, ssh in the foreground, all undone on the way out), the
login it builds, and ssh options that would outlive the tunnel refused. (The refusals before any network call:
tests/unit/connect/test_dispatch.py.)"""
import contextlib
import os
from types import SimpleNamespace

import pytest

from azext_bastion_native.clients import ssh as ssh_client
from azext_bastion_native.connect import ssh as connect_ssh
from azext_bastion_native.connect.environment import Environment
from azext_bastion_native.dataplane import Endpoint, Target
from azext_bastion_native.errors import Kind, Refused

VM_ID = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/web-1'


def _destination(admin='azureuser'):
    return SimpleNamespace(endpoint=Endpoint('bst-1.bastion.azure.com'), target=Target(VM_ID, 22), target_label=VM_ID,
                           admin_username=admin)


class _Machine:
    """An Environment whose tunnel and ssh are recorded: ``events`` in the order they happen."""

    def __init__(self, proxy_command='python -I proxy.py /run/s', port=None, exit_code=0, fail=None):
        self.events, self.argv = [], None

        @contextlib.contextmanager
        def open_tunnel(destination):
            self.events.append('tunnel open')
            try:
                yield SimpleNamespace(port=port, proxy_command=proxy_command)
            finally:
                self.events.append('tunnel closed')

        def run(argv):
            self.events.append('ssh')
            self.argv = argv
            if fail:
                raise fail
            return exit_code
        self.environment = Environment(system='Linux', run=run, open_tunnel=open_tunnel)


def test_ssh_runs_inside_the_tunnel_with_its_proxy_command_and_its_code_is_returned():
    machine = _Machine(exit_code=255)
    code = connect_ssh.run_ssh(_destination(), 'password', None, None, ['uptime'], '/usr/bin/ssh', machine.environment)
    assert code == 255 and machine.events == ['tunnel open', 'ssh', 'tunnel closed']
    argv = machine.argv
    assert argv[0] == '/usr/bin/ssh' and 'ProxyCommand=python -I proxy.py /run/s' in argv and '-p' not in argv
    assert argv[argv.index('-l') + 1] == 'azureuser'                 # the VM's admin user when none is given
    assert f'HostKeyAlias={ssh_client.host_key_alias(VM_ID)}' in argv
    assert argv[-2:] == [connect_ssh.destination_name(_destination()), 'uptime']


def test_the_username_given_wins_and_a_port_tunnel_is_reached_by_port():
    machine = _Machine(proxy_command=None, port=40022)
    connect_ssh.run_ssh(_destination(), 'ssh-key', 'alice', '/k/id', [], 'ssh', machine.environment)
    argv = machine.argv
    assert argv[argv.index('-l') + 1] == 'alice' and argv[argv.index('-i') + 1] == '/k/id'
    assert argv[argv.index('-p') + 1] == '40022'


def test_the_tunnel_is_closed_when_ssh_is_interrupted():
    machine = _Machine(fail=KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        connect_ssh.run_ssh(_destination(), 'password', None, None, [], 'ssh', machine.environment)
    assert machine.events == ['tunnel open', 'ssh', 'tunnel closed']


def test_an_entra_login_uses_the_certificates_principal_and_removes_its_directory(monkeypatch):
    from azext_bastion_native.clients import entra_cert
    made = {}

    def obtain(directory, fetch, cloud_name, scope):
        made['directory'] = directory
        return SimpleNamespace(principal='alice@contoso.com', private_key_path=f'{directory}/id',
                               certificate_path=f'{directory}/id-cert.pub')
    monkeypatch.setattr(entra_cert, 'obtain_certificate', obtain)
    machine = _Machine()
    connect_ssh.run_ssh(_destination(), 'aad', None, None, [], 'ssh', machine.environment,
                        fetch_certificate=lambda *_: None, cloud_name='AzureCloud')
    argv = machine.argv
    assert argv[argv.index('-l') + 1] == 'alice@contoso.com'
    assert f'CertificateFile={made["directory"]}/id-cert.pub' in argv
    assert not os.path.exists(made['directory'])                     # gone with the tunnel


@pytest.mark.parametrize('args', [['-f'], ['-N', '-f'], ['-o', 'ControlPersist=yes'], ['-fN']])
def test_options_that_outlive_the_tunnel_are_refused_with_the_lasting_alternatives(args):
    with pytest.raises(Refused) as refused:
        connect_ssh.refuse_backgrounding(args)
    assert refused.value.kind is Kind.INVALID_ARGUMENT
    assert 'ends with the command' in refused.value.message
    assert 'az network bastion tunnel' in refused.value.recommendation and 'ssh-config' in refused.value.recommendation


@pytest.mark.parametrize('args', [None, [], ['-L', '8080:localhost:80'], ['--', '-f'], ['uptime', '-f']])
def test_foreground_options_and_remote_commands_pass(args):
    assert connect_ssh.refuse_backgrounding(args) is None
