"""Cloud Shell, Key Vault key references, SSH key files, and capability checks.

The documentation's limitations as guards: refuse early, with the fix, before any network call.
Each refusal is an errors.Refused; the command boundary shows it as the CLI's typed error."""

import os
import re
import stat
from dataclasses import dataclass

from azext_bastion_native.bastion_facts import in_cloud_shell
from azext_bastion_native.errors import Kind, Refused

# Key Vault and Managed HSM DNS suffixes of the public, China, US Government and (retired) German clouds.
# The active cloud's own suffixes come in through extra_suffixes (see cloud_vault_suffixes).
VAULT_SUFFIXES = (
    'vault.azure.net', 'vault.azure.cn', 'vault.usgovcloudapi.net', 'vault.microsoftazure.de',
    'managedhsm.azure.net', 'managedhsm.azure.cn', 'managedhsm.usgovcloudapi.net',
)
_OBJECT_KINDS = ('secrets', 'keys', 'certificates')
_URL = re.compile(r'^(?:(?P<scheme>[a-z][a-z0-9+.-]*)://)?(?P<host>[^/\\\s:@]+)(?::\d+)?(?P<path>/[^?#]*)?',
                  re.IGNORECASE)
_APP_SERVICE = re.compile(r'^@microsoft\.keyvault\((?P<body>.*)\)\s*$', re.IGNORECASE | re.DOTALL)
# ssh refuses a private key that group or others may read or write (OpenSSH checks mode & 077).
_TOO_OPEN = stat.S_IRWXG | stat.S_IRWXO
# What a key file's text has and a path has not: line breaks, PEM/OpenSSH/PuTTY armour, a public key line
# ("ssh-ed25519 AAAA..."), or a long base64 run (a key's body pasted without armour) with fewer slashes than a
# path of that length would have.
_KEY_TEXT = re.compile(r'[\r\n]|PRIVATE KEY|-----BEGIN|PuTTY-User-Key-File|^\s*(?:ssh|ecdsa|sk)-\S+\s+AAAA')
_BASE64_RUN = re.compile(r'[A-Za-z0-9+/]{64,}={0,2}')


@dataclass(frozen=True)
class KeyVaultReference:
    vault: str = ''     # vault (or Managed HSM) name, when the reference names it
    kind: str = ''      # 'secrets' | 'keys' | 'certificates' | ''
    name: str = ''      # object name, when the reference names it


def refuse_in_cloud_shell(command_name):
    """Connecting commands do not work in Cloud Shell (per the documentation); configuration commands do."""
    if not in_cloud_shell():
        return
    raise Refused(
        f'`az {command_name}` cannot run in Azure Cloud Shell: native client connections are not supported there.',
        'Connect from the Azure portal instead (Bastion > Connect, browser connection), or run this '
        'command from your own computer with the Azure CLI and this extension installed.')


def cloud_vault_suffixes(cli_ctx):
    """The active cloud's Key Vault and Managed HSM DNS suffixes (e.g. '.vault.azure.net'), for extra_suffixes."""
    suffixes = getattr(getattr(cli_ctx, 'cloud', None), 'suffixes', None)
    found = []
    for attribute in ('keyvault_dns', 'mhsm_dns'):
        try:
            value = getattr(suffixes, attribute, None)
        except Exception:  # pylint: disable=broad-except
            # azure-cli raises CloudSuffixNotSetException for a suffix a custom cloud does not define
            value = None
        if value:
            found.append(value)
    return tuple(found)


def _vault_host(host, suffixes):
    host = host.lower()
    for suffix in suffixes:
        suffix = suffix.strip().lstrip('.').lower()
        if suffix and host.endswith('.' + suffix) and len(host) > len(suffix) + 1:
            return host[:-len(suffix) - 1]
    return None


def _parse_url(value, suffixes, require_scheme_or_object=True):
    match = _URL.match(value)
    if not match:
        return None
    scheme = (match.group('scheme') or '').lower()
    if scheme and scheme not in ('https', 'http'):
        return None
    vault = _vault_host(match.group('host'), suffixes)
    if vault is None:
        return None
    parts = [part for part in (match.group('path') or '').split('/') if part]
    has_object = len(parts) >= 2 and parts[0].lower() in _OBJECT_KINDS
    if not scheme and require_scheme_or_object and not has_object:
        # "myhost.vault.azure.net" with no scheme and no /secrets/NAME is more likely a file name
        return None
    if has_object:
        return KeyVaultReference(vault.split('.')[0], parts[0].lower(), parts[1])
    return KeyVaultReference(vault.split('.')[0])


def _parse_app_service(body, suffixes):
    fields = {}
    for item in body.split(';'):
        key, _, val = item.partition('=')
        if key.strip():
            fields[key.strip().lower()] = val.strip()
    if 'secreturi' in fields:
        parsed = _parse_url(fields['secreturi'], suffixes, require_scheme_or_object=False)
        if parsed:
            return parsed
    return KeyVaultReference(fields.get('vaultname', ''), 'secrets', fields.get('secretname', ''))


def parse_key_vault_reference(value, extra_suffixes=()):
    """The Key Vault reference that `value` is, or None when it is not one (e.g. a local file path)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text:
        return None
    suffixes = tuple(extra_suffixes) + VAULT_SUFFIXES
    app_service = _APP_SERVICE.match(text)
    if app_service:
        return _parse_app_service(app_service.group('body'), suffixes)
    return _parse_url(text, suffixes)


def is_key_vault_reference(value, extra_suffixes=()):
    return parse_key_vault_reference(value, extra_suffixes) is not None


def _has_scheme_or_app_service(value):
    text = value.strip()
    return bool(_APP_SERVICE.match(text)) or '://' in text


def holds_key_material(value):
    """Whether an --ssh-key value is a key's text rather than a path: azure-cli replaces an argument ``@FILE``
    with FILE's contents (azure-cli core commands/__init__.py, _expand_file_prefixed_files), so ``--ssh-key
    @~/.ssh/id_ed25519`` arrives as the private key itself. A value naming an existing file is a path."""
    if not isinstance(value, str) or not value.strip():
        return False
    base64_body = any(run.count('/') * 16 < len(run) for run in _BASE64_RUN.findall(value))
    if _KEY_TEXT.search(value) is None and not base64_body:
        return False
    try:
        return not os.path.exists(os.path.expanduser(value))
    except (OSError, ValueError):
        return True


def validate_ssh_key(namespace):
    """Argument validator of every --ssh-key (ssh, ssh-config, file): key text is refused before anything else
    runs, and never quoted, so it reaches no message, log line or azure-cli's error telemetry."""
    from azext_bastion_native.cli_errors import cli_error
    try:
        refuse_key_material(getattr(namespace, 'ssh_key', None))
    except Refused as refused:
        raise cli_error(refused) from None


def refuse_key_material(value):
    if holds_key_material(value):
        raise Refused(
            '--ssh-key holds the text of a key, not the path of a key file (azure-cli replaces @FILE with the '
            "file's contents). The value is not shown.",
            "Pass the key file's path, without @: --ssh-key ~/.ssh/id_ed25519", Kind.INVALID_ARGUMENT)


def _invalid_key(message, recommendation):
    return Refused(message, recommendation, Kind.INVALID_ARGUMENT)


def check_ssh_key_file(path, extra_suffixes=()):
    """The usable local private key path, or a Refused (invalid argument) saying how to fix it.

    A scheme-less value that looks like a vault host but exists as a local file is a file: the user meant it."""
    refuse_key_material(path)
    expanded = os.path.expanduser(path)
    reference = parse_key_vault_reference(path, extra_suffixes)
    if reference is not None and (_has_scheme_or_app_service(path) or not os.path.lexists(expanded)):
        vault = reference.vault or 'VAULT'
        name = reference.name or 'SECRET_NAME'
        raise _invalid_key(
            f"--ssh-key '{path}' is an Azure Key Vault reference: signing in with an SSH private key stored in "
            'Key Vault is not supported by Bastion native client.',
            recommendation=f'Download the key to a local file first: az keyvault secret download --vault-name {vault} '
                           f'-n {name} --file KEY && chmod 600 KEY, then pass --ssh-key KEY.')
    if not os.path.exists(expanded):
        raise _invalid_key(f"--ssh-key '{path}': no such file.",
                           'Give the path of your private key file, e.g. ~/.ssh/id_rsa.')
    if os.path.isdir(expanded):
        raise _invalid_key(f"--ssh-key '{path}' is a directory, not a private key file.",
                           'Give the key file itself, e.g. ~/.ssh/id_rsa.')
    if not os.access(expanded, os.R_OK):
        raise _invalid_key(f"--ssh-key '{path}' is not readable by you.",
                           f'Check its owner and permissions: chmod 600 {path}')
    if os.name != 'nt':
        mode = os.stat(expanded).st_mode
        if mode & _TOO_OPEN:
            raise _invalid_key(
                f"--ssh-key '{path}' is accessible by group or others (mode {stat.S_IMODE(mode):04o}); "
                'ssh refuses such a private key.',
                recommendation=f'chmod 600 {path}')
    return expanded


def refuse_offline(cli_ctx, command_name, ssh_key=None, checks=()):
    """The one pre-flight of the ssh family (ssh, file, ssh-config for one VM or many), before any network call:
    Cloud Shell, then the command's own ``checks`` in order (its arguments, the support table), then the key
    file. Returns the key's path, or None without --ssh-key."""
    refuse_in_cloud_shell(command_name)
    for check in checks:
        check()
    return check_ssh_key_file(ssh_key, cloud_vault_suffixes(cli_ctx)) if ssh_key else None
