"""clients/ssh.py: the ssh argv (route, sign-in, session options, the user's, host-key pinning), connection
names, background options, finding ssh."""
import subprocess

import pytest

from azext_bastion_native.clients import launch, ssh
from azext_bastion_native.clients.ssh import SshLogin
from azext_bastion_native.connect import file as file_transfer
from azext_bastion_native.connect.file import UPLOAD, Transfer

VM_ID = '/subscriptions/S1/resourceGroups/My-RG/providers/Microsoft.Compute/virtualMachines/Vm-1'


# -- ssh argv ------------------------------------------------------------------------------------------
def test_password_login_offers_nothing_but_password():
    argv = ssh.ssh_argv('/usr/bin/ssh', 40022, SshLogin('password', 'azureuser'), 'bastion.vm', name='bastion-vm-1')
    assert argv[:7] == ['/usr/bin/ssh', '-o', 'HostName=127.0.0.1', '-p', '40022', '-l', 'azureuser']
    assert 'PreferredAuthentications=password,keyboard-interactive' in argv
    assert 'PubkeyAuthentication=no' in argv
    assert '-i' not in argv
    assert argv[-1] == 'bastion-vm-1'


def test_key_login_uses_only_the_given_key():
    argv = ssh.ssh_argv('ssh', 1, SshLogin('ssh-key', 'u', key_path='/k/id'), 'a')
    assert argv[argv.index('-i') + 1] == '/k/id'
    assert 'IdentitiesOnly=yes' in argv


def test_aad_login_passes_key_and_certificate():
    argv = ssh.ssh_argv('ssh', 1, SshLogin('aad', 'alice', '/t/id_rsa', '/t/id_rsa-cert.pub'), 'a')
    assert argv[argv.index('-i') + 1] == '/t/id_rsa'
    assert 'CertificateFile=/t/id_rsa-cert.pub' in argv
    assert argv[argv.index('-l') + 1] == 'alice'


def test_user_arguments_follow_the_destination_verbatim():
    extra = ['-L', '8080:localhost:80', 'uptime', '&&', 'echo "a b"']
    argv = ssh.ssh_argv('ssh', 1, SshLogin('password'), 'alias', extra, name='bastion-vm-1')
    assert argv[-len(extra) - 1:] == ['bastion-vm-1'] + extra
    assert '-l' not in argv      # no user: ssh's own default applies


def test_host_key_options_pin_the_vm_unless_the_user_overrides_them():
    argv = ssh.ssh_argv('ssh', 1, SshLogin('password'), 'bastion.vm')
    assert 'HostKeyAlias=bastion.vm' in argv and 'StrictHostKeyChecking=accept-new' in argv
    overridden = ssh.ssh_argv('ssh', 1, SshLogin('password'), 'bastion.vm',
                              ['-o', 'stricthostkeychecking no', '-oHostKeyAlias=mine'])
    assert 'StrictHostKeyChecking=accept-new' not in overridden
    assert 'HostKeyAlias=bastion.vm' not in overridden
    assert overridden[-3:] == ['-o', 'stricthostkeychecking no', '-oHostKeyAlias=mine']


def test_the_destination_is_named_per_target_and_routed_by_our_options():
    """ssh is given a name per VM, never 127.0.0.1 (a user's `Host 127.0.0.1` block and %h/%C ControlPaths would
    apply to every VM); the route to the tunnel is on the command line, where it beats any ssh_config."""
    argv = ssh.ssh_argv('ssh', None, SshLogin('password'), 'bastion.vm', name='bastion-vm-1',
                        proxy_command='python -I proxy.py /run/s')
    assert argv[1:3] == ['-o', 'ProxyCommand=python -I proxy.py /run/s']
    assert argv[-1] == 'bastion-vm-1' and '127.0.0.1' not in ' '.join(argv)
    assert 'ControlPersist=no' in argv and argv.index('ControlPersist=no') < argv.index('bastion-vm-1')


def test_connection_name_differs_per_target_host_and_port_and_stays_short():
    host = 'bst-1.bastion.azure.com'
    first = ssh.connection_name(VM_ID, host, VM_ID, 22)
    assert first == ssh.connection_name(VM_ID.upper(), host.upper(), VM_ID.upper(), 22)     # ids: any case
    assert first.startswith('bastion-vm-1-') and len(first) <= 40
    others = {ssh.connection_name(VM_ID.replace('Vm-1', 'Vm-2'), host, VM_ID.replace('Vm-1', 'Vm-2'), 22),
              ssh.connection_name(VM_ID, host, VM_ID, 2222), ssh.connection_name(VM_ID, 'other.host', VM_ID, 22)}
    assert first not in others and len(others) == 3
    ip_target = '/subscriptions/S1/resourceGroups/rg/providers/Microsoft.Network/bh-hostConnect/10.0.0.4'
    assert ssh.connection_name('10.0.0.4', host, ip_target, 22).startswith('bastion-10-0-0-4-')
    scale_set = '/subscriptions/S1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web/' \
                'virtualMachines/3'
    assert ssh.connection_name(scale_set, host, scale_set, 22).startswith('bastion-web-3-')
    long_name = VM_ID.replace('Vm-1', 'a-very-long-virtual-machine-name-indeed')
    assert len(ssh.connection_name(long_name, host, long_name, 22)) <= 40


@pytest.mark.parametrize('args, found', [
    (['-f', '-N', '-L', '8080:localhost:80'], '-f'),
    (['-NfL', '8080:localhost:80'], '-NfL'),
    (['-L8080:localhost:80', '-fN'], '-fN'),
    (['-o', 'ControlPersist=yes'], '-o ControlPersist=yes'),
    (['-oControlPersist 10m'], '-o ControlPersist 10m'),
    (['-o', 'forkafterauthentication=yes'], '-o forkafterauthentication=yes'),
    (['-N', '-L', '8080:localhost:80'], None),
    (['-o', 'ControlPersist=no', '-o', 'ControlMaster=auto'], None),
    (['-l', '-f', 'uptime'], None),                     # '-f' is -l's value
    (['-F', 'cfg', 'tail', '-f', '/var/log/syslog'], None),      # the remote command's -f
    (['--', '-f'], None),
])
def test_background_options_are_found_among_the_options_only(args, found):
    assert ssh.background_option(args) == found


def test_host_key_alias_is_stable_per_vm_and_safe():
    alias = ssh.host_key_alias(VM_ID)
    assert alias == ssh.host_key_alias(VM_ID.upper())    # resource ids are case-insensitive
    assert alias != ssh.host_key_alias(VM_ID.replace('Vm-1', 'Vm-2'))
    assert alias.startswith('bastion.') and all(c.isalnum() or c in '.-_' for c in alias)
    assert ssh.host_key_alias('10.0.0.4') == 'bastion.10.0.0.4'
    assert ' ' not in ssh.host_key_alias('weird name,with comma')
    assert ',' not in ssh.host_key_alias('weird name,with comma')


def test_unknown_auth_type_is_an_error():
    with pytest.raises(ValueError):
        ssh.auth_options(SshLogin('kerberos'))


def test_missing_ssh_client_is_reported():
    with pytest.raises(ssh.SshClientNotFound):
        ssh.find_ssh(which=lambda _: None)
    assert ssh.find_ssh(which=lambda name: f'/opt/{name}') == '/opt/ssh'


@pytest.mark.skipif(not launch.find_program('ssh'), reason='needs OpenSSH ssh')
def test_ssh_dash_g_shows_our_options_winning_over_a_users_loopback_and_wildcard_blocks(tmp_path):
    """`ssh -G` prints the configuration ssh would use: a user's `Host 127.0.0.1 localhost` block that turns
    pinning off does not apply, and a `Host *` ControlPersist / StrictHostKeyChecking loses to our command line."""
    config = tmp_path / 'config'
    config.write_text('Host 127.0.0.1 localhost\n    UserKnownHostsFile /dev/null\n    StrictHostKeyChecking no\n'
                      '    HostKeyAlias loopback\n'
                      'Host *\n    ControlMaster auto\n    ControlPath ~/.ssh/cm-%r@%h:%p\n    ControlPersist 60\n'
                      '    StrictHostKeyChecking no\n    ProxyCommand nc %h %p\n')
    name = ssh.connection_name(VM_ID, 'bst-1.bastion.azure.com', VM_ID, 22)
    argv = ssh.ssh_argv(launch.find_program('ssh'), None, SshLogin('password', 'u'), ssh.host_key_alias(VM_ID),
                        ['-F', str(config), 'uptime'], name=name, proxy_command='proxy /run/s')
    shown = subprocess.run([argv[0], '-G', *argv[1:]], capture_output=True, text=True, check=True).stdout
    effective = dict(line.split(' ', 1) for line in shown.splitlines() if ' ' in line)
    assert effective['hostname'] == name
    assert effective['userknownhostsfile'] != '/dev/null'
    assert effective['stricthostkeychecking'] == 'accept-new'
    assert effective['hostkeyalias'] == ssh.host_key_alias(VM_ID)
    assert effective['controlpersist'] == 'no' and effective['controlmaster'] == 'auto'
    assert effective['proxycommand'] == 'proxy /run/s'


def test_ssh_and_scp_use_the_proxy_command_instead_of_a_port_and_keep_the_pinning():
    argv = ssh.ssh_argv('ssh', None, SshLogin('password', 'u'), 'bastion.vm', ['-o', 'ProxyCommand=mine', 'id'],
                        name='bastion-vm-1', proxy_command="python -I '/a b/proxy.py' /s")
    assert '-p' not in argv and 'None' not in argv
    assert argv.index("ProxyCommand=python -I '/a b/proxy.py' /s") < argv.index('ProxyCommand=mine')   # ours holds
    assert 'HostKeyAlias=bastion.vm' in argv and argv[-4:] == ['bastion-vm-1', '-o', 'ProxyCommand=mine', 'id']
    scp = file_transfer.scp_argv('scp', None, SshLogin('password', 'u'), 'bastion.vm', Transfer(UPLOAD, '/f', 'g'),
                                 name='bastion-vm-1', proxy_command='p /s')
    assert '-P' not in scp and 'ProxyCommand=p /s' in scp and 'HostKeyAlias=bastion.vm' in scp
    assert scp[-2:] == ['/f', 'bastion-vm-1:g']
