"""A private temporary directory and 0600 files inside it.

Private temporary files for native clients: ephemeral keys, certificates, .rdp files. Each lives in a directory only
the user can open, and the directory goes away on every exit path (upstream leaves its AAD key folders and .rdp files
behind)."""

import os
import shutil
import tempfile
from contextlib import contextmanager

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600


@contextmanager
def private_directory(prefix='az-bastion-'):
    """Yield a fresh directory (mode 0700) that is removed with its contents on exit, Ctrl+C included."""
    path = tempfile.mkdtemp(prefix=prefix)      # mkdtemp creates it 0700 already; chmod is belt and braces
    try:
        os.chmod(path, DIRECTORY_MODE)
        yield path
    finally:
        remove_tree(path)


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
