"""The demo: what a user sees, run against the local emulator (scripts/demo.sh sets everything up first).

It starts the emulator and a real OpenSSH sshd (standing in for the seeded Linux VM), logs the real `az` in,
then walks through the extension: look at the hosts, enable native client on the Basic host (upgrading it),
lock AzureBastionSubnet down with the NSG rule set, SSH to the VM through Bastion, copy a file through a tunnel,
and list sessions. Every command is printed, exactly as it runs, before it runs; everything it started is stopped
at the end (the connection agent the ssh config block started, the sshd, the emulator) and every file it wrote is
removed (its work directory, the file copied to the VM, the agent's files)."""

import hashlib
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'emulator'))
sys.path.insert(1, str(REPO))

from bastion_emulator.testing.sandbox import EmulatorProcess, az_environment  # noqa: E402
from bastion_emulator.testing.az_login import az_executable  # noqa: E402
from bastion_emulator.testing.sshd import sshd_available, start_sshd  # noqa: E402

RG = 'demo-rg'


def banner(text):
    print(f'\n=== {text}', flush=True)


def demo_env(env):
    """``env`` with this az first on PATH, so that the `az` the demo prints is the one it runs."""
    return dict(env, PATH=os.pathsep.join([str(Path(az_executable()).parent), env.get('PATH', os.defpath)]))


def show(argv):
    """Print ``argv`` as the shell command it is, before it runs."""
    print(f'\n$ {shlex.join(argv)}', flush=True)
    return argv


def run(env, *args, check=True, capture=False):
    argv = show(['az', *args])
    result = subprocess.run(argv, env=env, check=False, text=True, stdout=subprocess.PIPE if capture else None)
    if capture and result.stdout:
        print(result.stdout, end='', flush=True)
    if check and result.returncode != 0:
        raise SystemExit(f'demo step failed (exit {result.returncode}): az {shlex.join(args)}')
    return result


def ssh_steps(env, emulator, sshd, workdir):
    vm_id = emulator.resource_id('Microsoft.Compute/virtualMachines', 'linux-vm')
    key = str(sshd.client_key)
    banner('doctor: is everything in place to reach linux-vm? (each row says how to fix what is not)')
    run(env, 'network', 'bastion', 'doctor', '-g', RG, '-n', 'demo-bastion', '--target-resource-id', vm_id,
        '-o', 'table')
    banner('SSH to the Linux VM through Bastion with your own ssh client; the remote exit code comes back')
    run(env, 'network', 'bastion', 'ssh', '-g', RG, '-n', 'demo-bastion', '--target-resource-id', vm_id,
        '--auth-type', 'ssh-key', '--username', sshd.user, '--ssh-key', key, '--', '-o',
        f'UserKnownHostsFile={workdir}/known_hosts', 'uname', '-a')

    banner('ProxyCommand mode: an ssh config block, then plain ssh through Bastion')
    config = Path(workdir) / 'ssh_config'
    run(env, 'network', 'bastion', 'ssh-config', '-g', RG, '-n', 'demo-bastion', '--target-resource-id', vm_id,
        '--username', sshd.user, '--ssh-key', key, '--file', str(config))
    print(config.read_text(), end='', flush=True)
    subprocess.run(show(['ssh', '-F', str(config), '-o', f'UserKnownHostsFile={workdir}/known_hosts', 'linux-vm',
                         'hostname']), env=env, check=True)
    banner('The block went through the connection agent, which started by itself; stop it (its sessions go too)')
    run(env, 'network', 'bastion', 'agent', 'stop')

    banner('A local tunnel to port 22, and scp through it (10 MB each way, hashes compared)')
    tunnel = subprocess.Popen(  # pylint: disable=consider-using-with
        show(['az', 'network', 'bastion', 'tunnel', '-g', RG, '-n', 'demo-bastion', '--target-resource-id', vm_id,
              '--resource-port', '22', '--port', '0', '-o', 'json']), env=env, stdout=subprocess.PIPE, text=True)
    # The VM is this machine: the file copied to it is removed below through the tunnel, or here if that failed.
    on_vm = f'/tmp/bastion-native-demo-{uuid.uuid4().hex[:8]}.bin'
    try:
        ready = json.loads(tunnel.stdout.readline())
        print(f"tunnel ready: {ready}", flush=True)
        payload = Path(workdir) / 'payload.bin'
        payload.write_bytes(os.urandom(10 * 1024 * 1024))
        options = ['-i', key, '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o',
                   'StrictHostKeyChecking=accept-new', '-o', f'UserKnownHostsFile={workdir}/known_hosts_tunnel', '-o',
                   'HostKeyAlias=linux-vm']
        remote = f'{sshd.user}@127.0.0.1'
        subprocess.run(show(['scp', '-P', str(ready['port']), *options, str(payload), f'{remote}:{on_vm}']),
                       check=True)
        back = Path(workdir) / 'back.bin'
        subprocess.run(show(['scp', '-P', str(ready['port']), *options, f'{remote}:{on_vm}', str(back)]), check=True)
        same = hashlib.sha256(payload.read_bytes()).hexdigest() == hashlib.sha256(back.read_bytes()).hexdigest()
        print(f'scp through the tunnel: 10 MB up and down, hashes {"match" if same else "DIFFER"}', flush=True)
        if not same:
            raise SystemExit('demo step failed: the file came back different')
        subprocess.run(show(['ssh', '-p', str(ready['port']), *options, remote, 'rm', '-f', on_vm]), check=True)
    finally:
        tunnel.send_signal(signal.SIGINT)
        tunnel.wait(timeout=30)
        if os.path.exists(on_vm):
            os.remove(on_vm)
    print(f"Bastion sessions left open after the tunnel stopped: {len(emulator.get('sessions').json())}", flush=True)


def stop_agent(env):
    """The agent of this demo's az configuration, if a failed step left it running, and its files (agent stop
    leaves its log, for a user to read later; this configuration is gone with the demo)."""
    subprocess.run(['az', 'network', 'bastion', 'agent', 'stop'], env=env, check=False, capture_output=True)
    from azext_bastion_native.agent.proxy_helper import AgentUnavailable, agent_paths
    try:
        paths = agent_paths(env)
    except AgentUnavailable:
        return
    try:
        for path in (paths.socket, paths.lock, paths.start_lock, paths.log):
            if os.path.lexists(path):
                paths.unlink(path)
    finally:
        if paths.descriptor is not None:
            os.close(paths.descriptor)
    try:
        os.rmdir(paths.directory)       # the user's own agents' directory stays: it is not empty then
    except OSError:
        pass


def main():
    with tempfile.TemporaryDirectory(prefix='bastion-native-demo-') as workdir:
        banner('Starting the local Azure emulator (ARM, Entra token endpoint, Bastion data plane)')
        emulator = EmulatorProcess(Path(workdir) / 'emulator').start()
        sshd = env = None
        try:
            print(f"emulator ready at {emulator.url}", flush=True)
            if sshd_available():
                sshd = start_sshd(Path(workdir) / 'sshd', user_ca_pub=emulator.ready.get('user_ca_pub'),
                                  login_user=emulator.ready.get('login_name'))
                emulator.set_vm_endpoint('linux-vm', 22, '127.0.0.1', sshd.port)
                print(f'sshd for linux-vm listening on 127.0.0.1:{sshd.port}', flush=True)
            else:
                print('sshd is not installed: the SSH steps are skipped (run as root to have it installed)')
            banner('Logging the real az in to the emulator (az cloud register / az login --service-principal)')
            env = demo_env(az_environment(emulator, Path(workdir) / 'azure-config'))

            banner('Your Bastion hosts')
            run(env, 'network', 'bastion', 'list', '-o', 'table')
            banner('What native client allows from this computer (the support table from the docs, as data)')
            run(env, 'network', 'bastion', 'native-client', 'show', '-g', RG, '-n', 'basic-bastion', '-o', 'table')
            banner('Enable native client on the Basic host: upgrade to Standard, confirmed with --yes')
            run(env, 'network', 'bastion', 'native-client', 'enable', '-g', RG, '-n', 'basic-bastion',
                '--upgrade-sku', '--yes', '-o', 'table')
            banner('The NSG rule set AzureBastionSubnet needs, limited to SSH and RDP')
            run(env, 'network', 'bastion', 'nsg', 'show', '-o', 'table')
            banner('Apply it to demo-bastion\'s AzureBastionSubnet, then check it')
            run(env, 'network', 'bastion', 'nsg', 'apply', '-g', RG, '-n', 'demo-bastion', '--yes', '-o', 'table')
            run(env, 'network', 'bastion', 'nsg', 'check', '-g', RG, '-n', 'demo-bastion', '-o', 'table')
            if sshd is not None:
                ssh_steps(env, emulator, sshd, workdir)
            banner('Active sessions (none: every session was deleted when its connection ended)')
            run(env, 'network', 'bastion', 'session', 'list', '-g', RG, '-n', 'demo-bastion', '-o', 'table')
        finally:
            if env is not None:
                stop_agent(env)
            if sshd is not None:
                sshd.stop()
            emulator.stop()
    print('\ndemo finished: everything it started has stopped', flush=True)


if __name__ == '__main__':
    main()
