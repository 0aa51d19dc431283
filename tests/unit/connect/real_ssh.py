"""What the real OpenSSH client makes of a config (`ssh -G`, no connection), and the VM and ProxyCommand the ssh-config
tests write blocks for."""
import subprocess

VM_ID = '/subscriptions/S1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1'
PROXY = ['/opt/az/bin/az', 'network', 'bastion', 'proxy', '-g', 'rg', '-n', 'bh', '--target-resource-id', VM_ID,
         '--resource-port', '22']


def ssh_resolves(config_path, alias):
    """`ssh -G`: the options the real OpenSSH client takes from this config for ``alias`` (no connection)."""
    out = subprocess.run(['ssh', '-G', '-F', str(config_path), alias], capture_output=True, text=True, check=True,
                         timeout=10).stdout
    options = {}
    for line in out.splitlines():
        key, _, value = line.partition(' ')
        options.setdefault(key, []).append(value)
    return options
