"""The argv an ssh-config block's ProxyCommand runs: the connection agent's stand-alone helper, or
`az network bastion proxy` (this same az, by absolute path)."""

import os
import sys

from azext_bastion_native.clients.launch import find_program

HELPER_SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'agent',
                             'proxy_helper.py')
REFRESH_SCRIPT = os.path.join(os.path.dirname(HELPER_SCRIPT), 'entra_refresh.py')


def az_argv(executable=None, os_name=None, which=None):
    """How to start this same az again, as absolute argv: the az beside this interpreter (a venv or an MSI
    install), else the one on PATH (never from the current directory: find_program), else ``python -m azure.cli``."""
    executable = executable or sys.executable
    os_name = os_name or os.name
    names = ('az.cmd', 'az.bat', 'az') if os_name == 'nt' else ('az',)
    for candidate in (os.path.join(os.path.dirname(executable), name) for name in names):
        if os.path.isfile(candidate):
            return [os.path.abspath(candidate)]
    found = which('az') if which is not None else find_program('az', os_name)
    if found:
        return [found]
    return [os.path.abspath(executable), '-m', 'azure.cli']


def agent_helper_argv(az, resource_group, name, target_resource_id, port, subscription=None, python=None):
    """The connection agent's ProxyCommand: this interpreter, isolated (-I: nothing from the environment or the
    current directory on its path; -S: no site-packages, whose start-up hooks would cost more than the rest of a
    warm connection) runs the stand-alone helper, which starts the agent with ``az`` if need be."""
    return [python or sys.executable, '-I', '-S', HELPER_SCRIPT, resource_group, name, target_resource_id, str(port),
            subscription or '-', *az]


def proxy_argv(az, resource_group, name, target_resource_id, port, subscription=None):
    subscription_args = ['--subscription', subscription] if subscription else []
    return [*az, 'network', 'bastion', 'proxy', '-g', resource_group, '-n', name,
            '--target-resource-id', target_resource_id, '--resource-port', str(port), *subscription_args]


def proxy_command_argv(resource_group, name, target_resource_id, port, subscription, no_agent=False,
                       os_name=None):
    """The agent's helper on POSIX; `az network bastion proxy` on Windows (no Unix socket OpenSSH can use, no
    detached daemons) or when asked."""
    from azext_bastion_native.clients.local_tunnel import unix_sockets_supported
    maker = proxy_argv if no_agent or (os_name or os.name) == 'nt' or not unix_sockets_supported() \
        else agent_helper_argv
    return maker(az_argv(), resource_group, name, target_resource_id, port, subscription=subscription)


def entra_refresh_argv(python=None):
    """What an `--auth-type aad` block's `Match ... exec` runs on every ssh: the stand-alone certificate check
    (agent/entra_refresh.py) with this az's Python, isolated and without site-packages as the agent's helper; the
    same Python renews the certificate when it is due."""
    return [python or sys.executable, '-I', '-S', REFRESH_SCRIPT]
