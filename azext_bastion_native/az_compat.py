"""Calls into azure-cli-core whose shape differs between the supported azure-cli releases (2.67 to the newest),
each made the way every one of them accepts. Result serialisation is results.py."""


def entra_ssh_certificate(cli_ctx, scopes, data):
    """The SSH certificate Entra ID issues for ``data`` (token_type ssh-cert, req_cnf: the key's JWK).

    Profile.get_msal_token where the az has it; 2.67 has not, and there the signed-in credential is asked with
    ``data`` directly, as Microsoft's ssh extension does on such an az (azure-cli-extensions
    src/ssh/azext_ssh/custom.py, ``_get_and_write_certificate``)."""
    from azure.cli.core._profile import Profile
    profile = Profile(cli_ctx=cli_ctx)
    if hasattr(profile, 'get_msal_token'):
        return profile.get_msal_token(scopes, data)[1]
    credential, _, _ = profile.get_login_credentials(subscription_id=profile.get_subscription()['id'])
    return credential.get_token(*scopes, data=data).token
