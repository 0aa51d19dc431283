"""agent/entra_refresh.py: the renew-or-not decision read from the certificate itself (valid-before, RSA user
certificates), and the script as ssh's `Match exec` runs it (python -I -S, stdlib only): silent and without az while
the certificate is valid, a renewal with az's sign-in when it is not."""
import os
import subprocess
import sys
import time

from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from azext_bastion_native.agent import entra_refresh
from bastion_emulator.certs import sign_user_certificate

CA = ed25519.Ed25519PrivateKey.generate()
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
SCRIPT = entra_refresh.__file__


def _certificate(lifetime):
    return sign_user_certificate(CA, KEY.public_key(), 'alice@contoso.com', key_id='k', lifetime=lifetime).decode()


def test_valid_before_is_read_from_the_certificate():
    now = int(time.time())
    assert abs(entra_refresh.valid_before(_certificate(3600)) - (now + 3600)) <= 2


def test_renewal_is_due_only_within_the_margin_of_the_end():
    now = time.time()
    assert not entra_refresh.renewal_due(_certificate(3600), now)
    assert not entra_refresh.renewal_due(_certificate(entra_refresh.RENEW_MARGIN + 60), now)
    assert entra_refresh.renewal_due(_certificate(entra_refresh.RENEW_MARGIN - 60), now)
    assert entra_refresh.renewal_due(_certificate(-30), now)        # expired


def test_a_missing_damaged_or_foreign_certificate_is_renewed():
    good = _certificate(3600)
    now = time.time()
    for line in (None, '', 'garbage', good.split()[0] + ' !!!', good.split()[0] + ' ' + good.split()[1][:40],
                 'ssh-ed25519-cert-v01@openssh.com ' + good.split()[1]):
        assert entra_refresh.renewal_due(line, now), line


def _run(config_dir):
    """The script in a configuration directory where az is signed in to nothing: a renewal can only fail."""
    env = {'PATH': os.environ['PATH'], 'HOME': str(config_dir), 'AZURE_CONFIG_DIR': str(config_dir)}
    return subprocess.run([sys.executable, '-I', '-S', SCRIPT], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def _place(config_dir, line):
    directory = config_dir / entra_refresh.DIRECTORY_NAME
    directory.mkdir(mode=0o700, exist_ok=True)
    (directory / entra_refresh.CERTIFICATE_NAME).write_text(line + '\n')


def test_the_script_exits_quietly_without_renewing_while_the_certificate_is_valid(tmp_path):
    _place(tmp_path, _certificate(3600))
    result = _run(tmp_path)                         # a renewal would fail here: none is tried
    assert (result.returncode, result.stdout, result.stderr) == (0, '', '')
    assert not (tmp_path / entra_refresh.DIRECTORY_NAME / entra_refresh.LOCK_NAME).exists()


def test_the_script_renews_an_expired_certificate_with_az_and_says_in_one_line_why_it_could_not(tmp_path):
    expired = _certificate(-30)
    _place(tmp_path, expired)
    result = _run(tmp_path)                         # az's Python tries: nobody is signed in here
    assert result.returncode == 1 and result.stdout == ''
    assert result.stderr.startswith(entra_refresh.ERROR_PREFIX) and 'az login' in result.stderr
    assert len(result.stderr.splitlines()) == 1 and 'Traceback' not in result.stderr
    assert expired.split()[1] not in result.stderr


def test_the_quick_look_takes_only_a_certificate_file_of_ours_that_others_cannot_write(tmp_path):
    environ = {'AZURE_CONFIG_DIR': str(tmp_path), 'HOME': str(tmp_path)}
    line = _certificate(3600)
    _place(tmp_path, line)
    path = tmp_path / entra_refresh.DIRECTORY_NAME / entra_refresh.CERTIFICATE_NAME
    path.chmod(0o600)
    # pylint: disable=protected-access
    assert entra_refresh._certificate_at_a_glance(environ) == line
    path.chmod(0o666)
    assert entra_refresh._certificate_at_a_glance(environ) is None      # then the checked, private way
    path.chmod(0o600)
    path.rename(tmp_path / 'elsewhere')
    path.symlink_to(tmp_path / 'elsewhere')
    assert entra_refresh._certificate_at_a_glance(environ) is None
