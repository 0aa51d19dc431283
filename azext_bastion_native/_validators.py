"""Argument validators: they run before any network call, so bad input costs nothing."""


def validate_ports(namespace):
    from azure.cli.core.azclierror import InvalidArgumentValueError
    from azext_bastion_native.nsg.ports import parse_ports, PortListError
    try:
        namespace.ports = parse_ports(namespace.ports)
    except PortListError as err:
        raise InvalidArgumentValueError(
            f'--ports: {err}.',
            recommendation='Give ports as numbers 1-65535 or ranges like 8000-8010, e.g. --ports 22 3389.') from None
