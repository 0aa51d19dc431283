"""A private temporary directory and 0600 files inside it.

Private temporary files for native clients: ephemeral keys, certificates, .rdp files, the tunnel's Unix socket. Each
lives in a directory only the user can open, and the directory goes away on every exit path (upstream leaves its AAD
key folders and .rdp files behind). A run killed outright (kill -9, power loss) cannot clean up: each directory names
its owner process in OWNER_FILE, and the next run removes the directories whose owner is gone."""

import errno
import os
import shutil
import stat
import tempfile
from contextlib import contextmanager

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600
COMMON_PREFIX = 'az-bastion-'
OWNER_FILE = 'owner.pid'


@contextmanager
def private_directory(prefix=COMMON_PREFIX):
    """Yield a fresh directory (mode 0700) that is removed with its contents on exit, Ctrl+C included; the stale
    ones of runs that were killed are removed first."""
    remove_stale_directories()
    path = tempfile.mkdtemp(prefix=prefix)      # mkdtemp creates it 0700 already; chmod is belt and braces
    try:
        os.chmod(path, DIRECTORY_MODE)
        write_private_file(os.path.join(path, OWNER_FILE), str(os.getpid()))
        yield path
    finally:
        remove_tree(path)


def remove_stale_directories(parent=None):
    """Remove our private directories in ``parent`` (default: the temp directory) whose owner process is gone:
    ours (same user, a real directory, not a link), with an OWNER_FILE naming a pid that no longer exists. Anything
    it cannot prove dead stays: another run's live directory, one still being set up, other users', and all of them
    on Windows (no signal 0 there to ask whether a process lives). Returns the paths removed."""
    if os.name != 'posix':
        return []
    parent = parent or tempfile.gettempdir()
    removed = []
    try:
        entries = [entry for entry in os.scandir(parent) if entry.name.startswith(COMMON_PREFIX)]
    except OSError:
        return removed
    for entry in entries:
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            continue
        owner = _owner_pid(entry.path)
        if owner is not None and not _process_exists(owner):
            remove_tree(entry.path)
            removed.append(entry.path)
    return removed


def _owner_pid(directory):
    try:
        descriptor = os.open(os.path.join(directory, OWNER_FILE), os.O_RDONLY | getattr(os, 'O_NOFOLLOW', 0))
    except OSError:
        return None
    with os.fdopen(descriptor, 'rb') as handle:
        text = handle.read(32).decode('ascii', 'replace').strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


def _process_exists(pid):
    """Signal 0 checks without signalling; a reused pid counts as alive (the directory then stays: safe)."""
    try:
        os.kill(pid, 0)
    except OSError as err:
        return err.errno != errno.ESRCH     # EPERM: it exists, as another user's
    return True


def remove_tree(path):
    """Remove ``path`` and everything in it (our files are owner-writable, so nothing stops the removal)."""
    shutil.rmtree(path, ignore_errors=True)


def write_private_file(path, data):
    """Create ``path`` (it must not exist yet) with mode 0600 and write ``data`` (bytes or str) to it."""
    if isinstance(data, str):
        data = data.encode('utf-8')
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_NOFOLLOW', 0) | getattr(os, 'O_BINARY', 0)
    descriptor = os.open(path, flags, FILE_MODE)
    with os.fdopen(descriptor, 'wb') as handle:
        handle.write(data)
    return path
