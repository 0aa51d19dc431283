"""Limitation guards: Cloud Shell, Key Vault key references, SSH key files, capability refusals."""
import os

import pytest
from azure.cli.core.azclierror import InvalidArgumentValueError, ValidationError
from azure.cli.core.util import in_cloud_console

from azext_bastion_native import guards
from azext_bastion_native.guards import check_ssh_key_file, is_key_vault_reference, parse_key_vault_reference
from tests.unit.boundary import raises_as

KEY_VAULT_REFERENCES = [
    'https://myvault.vault.azure.net/secrets/sshkey',
    'https://myvault.vault.azure.net/secrets/sshkey/0123456789abcdef0123456789abcdef',
    'https://myvault.vault.azure.net/keys/sshkey',
    'https://myvault.vault.azure.net/certificates/sshkey/v1',
    'https://myvault.vault.azure.net:443/secrets/sshkey',
    'https://myvault.vault.azure.net/secrets/sshkey?api-version=7.4',
    'HTTPS://MyVault.Vault.Azure.Net/Secrets/SshKey',
    'http://myvault.vault.azure.net/secrets/sshkey',
    'https://myvault.vault.azure.net',
    'https://myvault.vault.azure.net/',
    'myvault.vault.azure.net/secrets/sshkey',
    'MYVAULT.VAULT.AZURE.NET/KEYS/sshkey/v2',
    'https://myvault.vault.azure.cn/secrets/sshkey',
    'https://myvault.vault.usgovcloudapi.net/secrets/sshkey',
    'https://myvault.vault.microsoftazure.de/secrets/sshkey',
    'myvault.vault.usgovcloudapi.net/certificates/sshkey',
    'https://myhsm.managedhsm.azure.net/keys/sshkey',
    'https://myhsm.managedhsm.azure.cn/keys/sshkey',
    'https://myhsm.managedhsm.usgovcloudapi.net/keys/sshkey/abc',
    'myhsm.managedhsm.azure.net/keys/sshkey',
    '@Microsoft.KeyVault(SecretUri=https://myvault.vault.azure.net/secrets/sshkey/)',
    '@Microsoft.KeyVault(SecretUri=https://myvault.vault.azure.net/secrets/sshkey/abc123)',
    '@microsoft.keyvault(secreturi=https://myvault.vault.azure.net/secrets/sshkey)',
    '@Microsoft.KeyVault(VaultName=myvault;SecretName=sshkey)',
    '@Microsoft.KeyVault(VaultName=myvault;SecretName=sshkey;SecretVersion=abc)',
    '  https://myvault.vault.azure.net/secrets/sshkey  ',
]

NOT_KEY_VAULT = [
    './keys/id_rsa', 'keys/id_rsa', '/home/me/.ssh/keys/id_rsa', '~/.ssh/id_ed25519', 'secrets/sshkey',
    './secrets/myvault.vault.azure.net', 'myvault.vault.azure.net', 'myvault.vault.azure.net.pem',
    'vault.azure.net/secrets/sshkey', 'https://example.com/secrets/sshkey', 'https://vault.azure.net.evil.com/keys/k',
    'myvault.vault.azure.net/other/sshkey', 'file://myvault.vault.azure.net/secrets/sshkey',
    r'C:\Users\me\.ssh\id_rsa', '', '   ', 'Microsoft.KeyVault', 'id_rsa@Microsoft.KeyVault',
]


@pytest.mark.parametrize('value', KEY_VAULT_REFERENCES)
def test_every_key_vault_form_is_recognised(value):
    assert is_key_vault_reference(value)


@pytest.mark.parametrize('value', NOT_KEY_VAULT)
def test_near_misses_are_not_key_vault_references(value):
    assert not is_key_vault_reference(value)


def test_non_string_is_not_a_reference():
    assert not is_key_vault_reference(None)


def test_active_cloud_suffix_is_honoured_with_or_without_leading_dot():
    value = 'https://myvault.vault.example.sovereign/secrets/sshkey'
    assert not is_key_vault_reference(value)
    assert is_key_vault_reference(value, extra_suffixes=('.vault.example.sovereign',))
    assert is_key_vault_reference('myvault.vault.example.sovereign/keys/k', extra_suffixes=('vault.example.sovereign',))


def test_cloud_vault_suffixes_reads_the_cli_cloud():
    class Suffixes:
        keyvault_dns = '.vault.example.sovereign'

        @property
        def mhsm_dns(self):
            raise RuntimeError('suffix not set')   # azure-cli raises for a suffix a custom cloud lacks

    class Cloud:
        suffixes = Suffixes()

    class Ctx:
        cloud = Cloud()

    assert guards.cloud_vault_suffixes(Ctx()) == ('.vault.example.sovereign',)
    assert guards.cloud_vault_suffixes(object()) == ()


@pytest.mark.parametrize('value, vault, kind, name', [
    ('https://myvault.vault.azure.net/secrets/sshkey/v1', 'myvault', 'secrets', 'sshkey'),
    ('myhsm.managedhsm.azure.net/keys/k1', 'myhsm', 'keys', 'k1'),
    ('@Microsoft.KeyVault(VaultName=v2;SecretName=s2)', 'v2', 'secrets', 's2'),
    ('@Microsoft.KeyVault(SecretUri=https://v3.vault.azure.cn/secrets/s3/)', 'v3', 'secrets', 's3'),
])
def test_parse_names_vault_and_object(value, vault, kind, name):
    ref = parse_key_vault_reference(value)
    assert (ref.vault, ref.kind, ref.name) == (vault, kind, name)


# --- check_ssh_key_file ---------------------------------------------------------------------------

def _key(tmp_path, name='id_rsa', mode=0o600):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('-----BEGIN OPENSSH PRIVATE KEY-----\n')
    os.chmod(path, mode)
    return path


def test_a_private_key_file_passes_and_is_expanded(tmp_path, monkeypatch):
    key = _key(tmp_path / '.ssh')
    monkeypatch.setenv('HOME', str(tmp_path))
    assert check_ssh_key_file('~/.ssh/id_rsa') == str(key)
    assert check_ssh_key_file(str(key)) == str(key)


def test_a_local_file_under_a_keys_folder_is_not_refused(tmp_path, monkeypatch):
    _key(tmp_path / 'keys')
    monkeypatch.chdir(tmp_path)
    assert check_ssh_key_file('./keys/id_rsa') == './keys/id_rsa'


def test_an_existing_file_that_looks_like_a_vault_path_is_a_file(tmp_path, monkeypatch):
    _key(tmp_path / 'myvault.vault.azure.net' / 'secrets', 'sshkey')
    monkeypatch.chdir(tmp_path)
    assert check_ssh_key_file('myvault.vault.azure.net/secrets/sshkey')


@pytest.mark.parametrize('value', KEY_VAULT_REFERENCES)
def test_key_vault_references_are_refused_with_the_download_recipe(value):
    with raises_as(InvalidArgumentValueError) as refused:
        check_ssh_key_file(value)
    assert 'Key Vault' in str(refused.value)
    assert 'az keyvault secret download --vault-name' in refused.value.recommendations[0]
    assert 'chmod 600' in refused.value.recommendations[0]


def test_refusal_names_the_vault_and_secret():
    with raises_as(InvalidArgumentValueError) as refused:
        check_ssh_key_file('https://kv1.vault.azure.net/secrets/bastion-key')
    assert '--vault-name kv1 -n bastion-key --file KEY' in refused.value.recommendations[0]


def test_missing_file(tmp_path):
    with raises_as(InvalidArgumentValueError, match='no such file'):
        check_ssh_key_file(str(tmp_path / 'nope'))


def test_directory(tmp_path):
    with raises_as(InvalidArgumentValueError, match='is a directory'):
        check_ssh_key_file(str(tmp_path))


@pytest.mark.parametrize('mode', [0o644, 0o640, 0o604, 0o620, 0o602, 0o660, 0o666, 0o700 | 0o070])
def test_group_or_other_access_is_refused_with_chmod(tmp_path, mode):
    key = _key(tmp_path, mode=mode)
    with raises_as(InvalidArgumentValueError) as refused:
        check_ssh_key_file(str(key))
    assert 'group or others' in str(refused.value)
    assert refused.value.recommendations == [f'chmod 600 {key}']


@pytest.mark.parametrize('mode', [0o600, 0o400, 0o700])
def test_owner_only_modes_pass(tmp_path, mode):
    key = _key(tmp_path, mode=mode)
    assert check_ssh_key_file(str(key)) == str(key)


@pytest.mark.skipif(os.geteuid() == 0, reason='root reads every file')
def test_unreadable_file(tmp_path):
    key = _key(tmp_path, mode=0o200)
    with raises_as(InvalidArgumentValueError, match='not readable'):
        check_ssh_key_file(str(key))


def test_unreadable_file_as_seen_by_access(tmp_path, monkeypatch):
    key = _key(tmp_path)
    monkeypatch.setattr(guards.os, 'access', lambda path, mode: False)
    with raises_as(InvalidArgumentValueError, match='not readable'):
        check_ssh_key_file(str(key))


# --- Cloud Shell ------------------------------------------------------------------------------

def test_cloud_shell_refused_with_the_portal_pointer(monkeypatch):
    monkeypatch.setenv('ACC_CLOUD', 'PROD')
    assert in_cloud_console()
    with raises_as(ValidationError) as refused:
        guards.refuse_in_cloud_shell('network bastion ssh')
    assert 'Cloud Shell' in str(refused.value) and 'az network bastion ssh' in str(refused.value)
    assert 'portal' in refused.value.recommendations[0]


@pytest.mark.parametrize('value', [None, ''])
def test_outside_cloud_shell_nothing_happens(monkeypatch, value):
    if value is None:
        monkeypatch.delenv('ACC_CLOUD', raising=False)
    else:
        monkeypatch.setenv('ACC_CLOUD', value)
    assert guards.in_cloud_shell() == bool(in_cloud_console())
    assert guards.refuse_in_cloud_shell('network bastion ssh') is None


# --- --ssh-key holding a key's text (azure-cli's @FILE expansion) ------------------------------------
@pytest.mark.parametrize('text', [
    '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END',
    '-----BEGIN RSA PRIVATE KEY-----',
    'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB3ZkXwz5F6s9kJ3o0h0m4H1bL3c9q2W6y0v5x1yZ user@host',
    'PuTTY-User-Key-File-3: ssh-ed25519',
    'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZWQyNTUxOQAAACB',
])
def test_key_text_is_refused_without_quoting_it(text):
    with raises_as(InvalidArgumentValueError) as refused:
        check_ssh_key_file(text)
    assert 'without @' in ' '.join(refused.value.recommendations)
    assert text not in str(refused.value) and 'b3BlbnNzaC1' not in str(refused.value)


@pytest.mark.parametrize('path', ['~/.ssh/id_ed25519', '@~/.ssh/missing', 'C:\\Users\\me\\.ssh\\id_rsa',
                                  '/home/user/projects/myproject/keys/deploy/production/region/westeurope/key'])
def test_paths_are_not_mistaken_for_key_text(path):
    assert not guards.holds_key_material(path)


def test_an_existing_file_is_a_path_whatever_its_name(tmp_path):
    key = tmp_path / ('A' * 70)
    key.write_text('x')
    assert not guards.holds_key_material(str(key))


def test_the_ssh_familys_one_pre_flight_runs_cloud_shell_then_the_commands_checks_then_the_key(
        tmp_path, monkeypatch):
    key = tmp_path / 'id'
    key.write_text('k')
    key.chmod(0o600)
    cli_ctx = type('Ctx', (), {'cloud': type('Cloud', (), {'suffixes': None})()})()
    ran = []
    monkeypatch.delenv('ACC_CLOUD', raising=False)
    assert guards.refuse_offline(cli_ctx, 'network bastion ssh', str(key),
                                 (lambda: ran.append('a'), lambda: ran.append('b'))) == str(key)
    assert ran == ['a', 'b']
    assert guards.refuse_offline(cli_ctx, 'network bastion ssh') is None
    with raises_as(InvalidArgumentValueError, match='no such file'):
        guards.refuse_offline(cli_ctx, 'network bastion ssh', str(tmp_path / 'missing'), (lambda: ran.append('c'),))
    assert ran == ['a', 'b', 'c']       # the command's checks come before the key
    monkeypatch.setenv('ACC_CLOUD', 'PROD')
    with raises_as(ValidationError, match='Cloud Shell'):
        guards.refuse_offline(cli_ctx, 'network bastion ssh', str(key), (lambda: ran.append('d'),))
    assert ran == ['a', 'b', 'c']       # Cloud Shell first of all
