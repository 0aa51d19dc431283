"""connect/proxy_command.py: the ProxyCommand's argv (the agent's helper or `az network bastion proxy`, this az by
absolute path, never one from the current directory)."""
import os

from azext_bastion_native.clients.launch import find_program
from azext_bastion_native.connect import proxy_command
from tests.unit.connect.real_ssh import VM_ID


def test_az_argv_prefers_the_az_beside_this_interpreter(tmp_path):
    (tmp_path / 'bin').mkdir()
    python = tmp_path / 'bin' / 'python'
    az = tmp_path / 'bin' / 'az'
    az.write_text('#!/bin/sh\n')
    assert proxy_command.az_argv(str(python), 'posix', which=lambda _: '/usr/bin/az') == [str(az)]
    az.unlink()
    assert proxy_command.az_argv(str(python), 'posix', which=lambda _: '/usr/bin/az') == ['/usr/bin/az']
    assert proxy_command.az_argv(str(python), 'posix', which=lambda _: None) == [str(python), '-m', 'azure.cli']


def test_windows_az_is_never_taken_from_the_current_directory():
    files = {'C:\\work\\repo\\az.bat', 'C:\\Program Files\\Azure CLI\\wbin\\az.cmd'}
    environ = {'PATH': '.;;repo;C:\\Program Files\\Azure CLI\\wbin', 'PATHEXT': '.COM;.EXE;.BAT;.CMD'}
    found = find_program('az', 'nt', environ, isfile=files.__contains__)
    assert found == 'C:\\Program Files\\Azure CLI\\wbin\\az.cmd'
    assert find_program('az', 'nt', {'PATH': '.;repo'}, isfile=lambda _: True) is None


def test_subscription_goes_into_the_proxy_command_when_given():
    assert proxy_command.proxy_argv(['az'], 'rg', 'bh', VM_ID, 22, subscription='S2')[-2:] == ['--subscription', 'S2']
    assert '--subscription' not in proxy_command.proxy_argv(['az'], 'rg', 'bh', VM_ID, 22)


def test_proxy_command_is_the_agent_helper_on_posix_and_az_proxy_on_windows_or_when_asked(monkeypatch):
    monkeypatch.setattr(proxy_command, 'az_argv', lambda: ['/opt/az/bin/az'])
    helper = proxy_command.proxy_command_argv('rg', 'bh', VM_ID, 22, 'S2', os_name='posix')
    assert helper[1:4] == ['-I', '-S', proxy_command.HELPER_SCRIPT] and os.path.isfile(helper[3])
    assert helper[4:] == ['rg', 'bh', VM_ID, '22', 'S2', '/opt/az/bin/az']
    assert proxy_command.proxy_command_argv('rg', 'bh', VM_ID, 22, None, os_name='nt')[1:4] == \
        ['network', 'bastion', 'proxy']
    assert proxy_command.proxy_command_argv('rg', 'bh', VM_ID, 22, None, no_agent=True, os_name='posix')[1:4] == \
        ['network', 'bastion', 'proxy']
