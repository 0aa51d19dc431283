"""Writing an ssh config file: under a lock beside it, read, merge and write atomically (temp file in the same
directory + rename) after the real `ssh -G` has read the new text and resolved every written alias to exactly what
its block says."""

import contextlib
import errno
import os
import subprocess
import tempfile
import time

from azext_bastion_native.clients.launch import find_program
from azext_bastion_native.connect import ssh_config_text as text_format
from azext_bastion_native.connect.ssh_config_text import SshConfigError
from azext_bastion_native.errors import Kind

try:
    from fcntl import LOCK_EX, LOCK_NB, flock as _flock
except ImportError:     # Windows
    _flock = None  # type: ignore[assignment]


FILE_MODE = 0o600
DIRECTORY_MODE = 0o700
VALIDATE_TIMEOUT = 15.0
LOCK_SUFFIX = '.lock'
LOCK_WAIT = 120.0       # another run's read, merge, `ssh -G` and write take well under a second each


def real_path(path):
    return os.path.realpath(os.path.expanduser(path))


def read_config(path):
    with open(path, encoding='utf-8', newline='') as handle:
        return handle.read()


def check_can_write(path, alias, overwrite):
    """Refuse early (before any network call) what write_block would refuse."""
    path = real_path(path)
    if os.path.isdir(path):
        raise SshConfigError(Kind.INVALID_ARGUMENT, f"--file '{path}' is a directory.",
                             'Give the config file itself, e.g. ~/.ssh/config.')
    if os.path.exists(path):
        text_format.merge_block(read_config(path), alias, '', overwrite)


def _make_directory(directory):
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=DIRECTORY_MODE)
        os.chmod(directory, DIRECTORY_MODE)     # makedirs' mode is filtered by the umask


@contextlib.contextmanager
def config_lock(path, wait=LOCK_WAIT):
    """An exclusive lock held across a run's read, merge and write of the config at ``path``, so two runs at once
    each merge into what the other wrote and no block is lost. POSIX: flock on the config's directory (a lock on
    the file itself would be on the inode the rename replaces, and a lock file would be one more file in the
    user's ~/.ssh); where a directory cannot be locked (NFS emulates flock with write locks), and on Windows, a
    lock on PATH.lock beside it."""
    directory = os.path.dirname(path)
    _make_directory(directory)
    descriptor = os.open(directory, os.O_RDONLY) if _flock is not None else _open_lock_file(path)
    try:
        try:
            _wait_for(lambda: _lock(descriptor), path, wait)
        except _CannotLock:
            os.close(descriptor)
            descriptor = _open_lock_file(path)
            _wait_for(lambda: _lock(descriptor), path, wait)
        yield
    finally:
        os.close(descriptor)        # closing drops the lock


class _CannotLock(Exception):
    """The lock cannot be taken on this descriptor at all (not: another run holds it)."""


def _open_lock_file(path):
    return os.open(path + LOCK_SUFFIX, os.O_RDWR | os.O_CREAT, FILE_MODE)


def _lock(descriptor):
    if _flock is not None:
        _flock(descriptor, LOCK_EX | LOCK_NB)
        return
    import msvcrt  # pylint: disable=import-error  # Windows only
    msvcrt.locking(descriptor, msvcrt.LK_NBLCK, 1)


def _wait_for(acquire, path, wait):
    deadline = time.monotonic() + wait
    while True:
        try:
            acquire()
            return
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES, errno.EDEADLK):
                raise _CannotLock() from err
            if time.monotonic() >= deadline:
                raise SshConfigError(Kind.VALIDATION, f"Another ssh-config run is writing '{path}' and did not "
                                     f'finish within {int(wait)} s.', 'Wait for the other run to end, then run '
                                     'this one again.') from None
            time.sleep(0.05)


def _resolve_with_ssh(ssh, path, alias):
    """`ssh -G -F PATH ALIAS` (no connection): {option: [values]}, or None when ssh could not be run;
    SshConfigError with ssh's own words if it cannot read the file."""
    try:
        result = subprocess.run([ssh, '-G', '-F', path, alias], capture_output=True, text=True, check=False,
                                timeout=VALIDATE_TIMEOUT, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        said = ' '.join(result.stderr.strip().replace(path, '<config>').split())[:500]
        raise SshConfigError(Kind.DAMAGED, f'ssh cannot read the config with this block, so it was not written: {said}',
                             'Check the lines ssh names (they may be your own), or write the block to another '
                             'file with --file.')
    options = {}
    for line in result.stdout.splitlines():
        option, _, value = line.partition(' ')
        options.setdefault(option, []).append(value)
    return options


def validate_with_ssh(path, blocks, ssh=None):
    """Let the real OpenSSH client read the config at ``path`` for each alias of ``blocks`` ({alias: block}),
    so a value it cannot read, or a line of the user's that ssh would take instead of the block's (a top-level
    `User`, `ProxyCommand none`, an Include's `ProxyJump`), never reaches the user's file. Returns False when
    there is no ssh to ask."""
    ssh = ssh or find_program('ssh')
    if ssh is None:
        return False
    for alias, block in (blocks.items() or [('bastion-native-check', '')]):
        resolved = _resolve_with_ssh(ssh, path, alias)
        if resolved is None:
            return False
        found = text_format.differences(block, resolved) if block else []
        if found:
            said = '; '.join(f"{option} would be {text_format.printable(got) if got else 'none'} (the block: "
                             f"{text_format.printable(wanted) if wanted else 'none'})" for option, got, wanted in found)
            raise SshConfigError(
                Kind.VALIDATION, f"ssh would not connect to '{alias}' as its Bastion block says, so it was not "
                f'written: {said}.',
                'A line ssh reads first sets these (a top-level line or an Include of your config, or a Host/Match '
                'section above the block): move it below the block or into a section that does not match '
                f'{alias}, or write the block to a file of its own with --file and connect with ssh -F FILE {alias}.')
    return True


def edit_config(path, edit, ssh=None):
    """Under the config's lock: ``edit(current text)`` -> (new text, {alias: block} to check with ssh, result);
    the new text checked (validate_with_ssh) and put in place atomically. Returns (real path, result)."""
    path = real_path(path)
    with config_lock(path):
        current = read_config(path) if os.path.exists(path) else ''
        merged, written, result = edit(current)
        write_atomically(path, merged, lambda temporary: validate_with_ssh(temporary, written, ssh))
    return path, result


def write_blocks(path, blocks, overwrite=False, remove=(), ssh=None):
    """Merge ``blocks`` ({alias: text}) into the config at ``path`` and take out ours for ``remove``
    (merge_blocks), check the result with `ssh -G`, then put it in place atomically, all under the lock.

    A new file is made 0600 (its directory 0700); an existing one keeps its mode and every other line. A
    symlinked config is updated where it points. Returns (real path, aliases whose block was replaced)."""
    def merge(current):
        merged, replaced = text_format.merge_blocks(current, blocks, overwrite, remove)
        return merged, blocks, replaced
    return edit_config(path, merge, ssh)


def write_block(path, alias, block, overwrite=False):
    """write_blocks for one block: (real path, True if it replaced ours for ``alias``)."""
    path, replaced = write_blocks(path, {alias: block}, overwrite)
    return path, bool(replaced)


def write_atomically(path, text, check=None):
    """Write ``text`` to a temporary file beside ``path``, ``check(temporary path)`` it, then rename it over
    ``path``: readers see the old file or the new one, never half of one. A new file is 0600 (its directory
    0700); an existing one keeps its mode. Returns the real path."""
    path = real_path(path)
    directory = os.path.dirname(path)
    _make_directory(directory)
    mode = os.stat(path).st_mode & 0o7777 if os.path.exists(path) else FILE_MODE
    descriptor, temporary = tempfile.mkstemp(prefix=f'.{os.path.basename(path)}.', suffix='.tmp', dir=directory)
    try:
        with os.fdopen(descriptor, 'w', encoding='utf-8', newline='') as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        if check is not None:
            check(temporary)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    return path
