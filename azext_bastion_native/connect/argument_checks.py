"""Argument checks of the connecting commands that need no Azure call: the connect request (connect.preflight's
checks) and the ssh sign-in options."""


def connect_request(resource_group, name, target_resource_id, target_ip_address, port):
    """The tunnel engine's request; its argument checks (no network) run here."""
    from azext_bastion_native.connect.preflight import ConnectRequest, check_arguments
    request = ConnectRequest(resource_group, name, port, target_resource_id, target_ip_address)
    check_arguments(request)
    return request


def check_ssh_login_arguments(auth_type, username, ssh_key):
    from azext_bastion_native.errors import Kind, Refused
    if auth_type == 'ssh-key' and not ssh_key:
        raise Refused('--auth-type ssh-key needs --ssh-key PATH (your private key file).', kind=Kind.MISSING)
    if ssh_key and auth_type != 'ssh-key':
        raise Refused(f'--ssh-key goes with --auth-type ssh-key, not {auth_type}.',
                      'Use --auth-type ssh-key --ssh-key PATH.', Kind.USAGE)
    if auth_type == 'aad' and username:
        raise Refused('--username does not go with --auth-type aad: the login name is the one in your Entra ID '
                      'certificate.', 'Drop --username.', Kind.USAGE)
