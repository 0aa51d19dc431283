"""Argument validators: they run before any network call, so bad input costs nothing."""

from azext_bastion_native.bastion_facts import MAX_PORT, is_port


def validate_ports(namespace):
    from azure.cli.core.azclierror import InvalidArgumentValueError
    from azext_bastion_native.nsg.ports import parse_ports, PortListError
    try:
        namespace.ports = parse_ports(namespace.ports)
    except PortListError as err:
        raise InvalidArgumentValueError(
            f'--ports: {err}.',
            recommendation='Give ports as numbers 1-65535 or ranges like 8000-8010, e.g. --ports 22 3389.') from None


def _refuse(message, recommendation):
    from azure.cli.core.azclierror import InvalidArgumentValueError
    raise InvalidArgumentValueError(message, recommendation=recommendation)


def validate_resource_port(namespace):
    """--resource-port, when given, is a port on the target: 1-65535 (0 is no port, not "the default")."""
    port = getattr(namespace, 'resource_port', None)
    if port is not None and not is_port(port):
        _refuse(f'--resource-port {port} is not a port (1-65535).',
                'Give the port the target listens on, e.g. --resource-port 22, or leave it out for the default.')


def validate_local_port(namespace):
    """tunnel --port: 0 (a free port) to 65535."""
    port = getattr(namespace, 'port', None)
    if port is not None and not 0 <= port <= MAX_PORT:
        _refuse(f'--port {port} is not a port (1-65535, or 0 for a free one).',
                'Choose a local port such as --port 2222, or --port 0 for a free one.')


def validate_positive_seconds(namespace):
    """tunnel and proxy --timeout and --idle-timeout: seconds above zero (0 would end them at once)."""
    for option, dest in (('--timeout', 'timeout'), ('--idle-timeout', 'idle_timeout')):
        seconds = getattr(namespace, dest, None)
        if seconds is not None and seconds <= 0:
            _refuse(f'{option} {seconds} is not a number of seconds above 0.',
                    f'Give {option} in seconds, e.g. {option} 3600, or leave it out for no limit.')


def validate_agent_idle_timeout(namespace):
    """agent start --idle-timeout: seconds above zero; left out, the agent's default applies (it always has a limit)."""
    seconds = getattr(namespace, 'idle_timeout', None)
    if seconds is not None and seconds <= 0:
        from azext_bastion_native.agent.server import DEFAULT_IDLE_TIMEOUT
        _refuse(f'--idle-timeout {seconds:g} is not a number of seconds above 0.',
                f'Give --idle-timeout in seconds, e.g. --idle-timeout 3600, or leave it out for the default of '
                f'{DEFAULT_IDLE_TIMEOUT:.0f} seconds.')


def validate_max_connections(namespace):
    """tunnel --max-connections: at least 1 (0 would refuse every connection)."""
    count = getattr(namespace, 'max_connections', None)
    if count is not None and count < 1:
        _refuse(f'--max-connections {count} would refuse every connection.',
                'Give at least 1, or leave it out for no limit.')


def validate_one_host(namespace):
    """A connecting command works through one Bastion host: several --ids would run it once per host, at the same
    time, each on the one terminal (azure-cli runs the jobs of several ids concurrently)."""
    ids = getattr(namespace, '_ids', None) or getattr(namespace, 'ids', None) or []
    _refuse_other_resource_ids(ids)
    if len(ids) > 1:
        from azure.cli.core.azclierror import ArgumentUsageError
        raise ArgumentUsageError(f'--ids names {len(ids)} Bastion hosts; this command connects through one.',
                                 recommendation='Give one Bastion host ID, or run the command once per host.')


def _refuse_other_resource_ids(ids):
    """--ids names the Bastion host; a VM's ID there would be read as a host named like the VM ("Bastion host
    'web-1' ... not found"), so say what was given and where it goes."""
    from azure.mgmt.core.tools import is_valid_resource_id, parse_resource_id
    for resource_id in ids:
        if not is_valid_resource_id(resource_id):
            continue
        parts = parse_resource_id(resource_id)
        kind = f"{parts.get('namespace', '')}/{parts.get('type', '')}"
        if kind.lower() == 'microsoft.network/bastionhosts':
            continue
        compute = ('microsoft.compute/virtualmachines', 'microsoft.compute/virtualmachinescalesets')
        what = 'a virtual machine' if kind.lower() in compute else f'a {kind} resource'
        _refuse(f"--ids '{resource_id}' is the ID of {what}, not of a Bastion host: --ids names the Bastion host "
                'to go through.',
                'Give the VM with --target-resource-id and the host with --ids BASTION_ID or -g RG -n BASTION, e.g. '
                'az network bastion ssh -g RG -n BASTION --target-resource-id VM_ID ...')
