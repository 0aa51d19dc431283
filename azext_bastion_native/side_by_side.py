"""Microsoft's `bastion` extension installed beside this one. Both define `az network bastion create/delete/list/
show/update/wait/ssh/rdp/tunnel`; azure-cli merges the command tables without a word, the extension loaded last
winning (by name in 2.91, in directory-listing order in older cores). Found cheaply (a directory look-up, no
imports beyond azure-cli's own extension module) when the command table loads, and said once on stderr."""

import functools
import glob
import os

MICROSOFT_EXTENSION = 'bastion'
# src/bastion/azext_bastion/commands.py and aaz/latest/network/bastion/ in Azure/azure-cli-extensions
CLASHING_COMMANDS = ('create', 'delete', 'list', 'show', 'update', 'wait', 'ssh', 'rdp', 'tunnel')
REMOVE_COMMAND = f'az extension remove -n {MICROSOFT_EXTENSION}'


def extension_dirs():
    """Where azure-cli keeps wheel extensions: the user's (AZURE_EXTENSION_DIR) and the system-wide one."""
    from azure.cli.core.extension import EXTENSIONS_DIR, EXTENSIONS_SYS_DIR
    return (EXTENSIONS_DIR, EXTENSIONS_SYS_DIR)


def installed_path(dirs):
    """The folder of an installed `bastion` extension in `dirs`, or None. Installed means what azure-cli's
    WheelExtension.get_all() counts: a folder of that name holding a *.dist-info or *.egg-info."""
    for directory in dirs:
        path = os.path.join(directory, MICROSOFT_EXTENSION)
        if os.path.isdir(path) and glob.glob(os.path.join(path, '*.*-info')):
            return path
    return None


def clash_message(path):
    commands = ', '.join(CLASHING_COMMANDS)
    return (f"Microsoft's '{MICROSOFT_EXTENSION}' extension is installed ({path}) beside bastion-native: both define "
            f'`az network bastion` {commands}, and azure-cli silently runs whichever loads last. bastion-native '
            f'does all that extension does (same commands and options). Remove it: {REMOVE_COMMAND}')


@functools.lru_cache(maxsize=None)
def warn_if_installed():
    """Warn (stderr, through azure-cli's logger) at most once per process; returns the folder found or None."""
    path = installed_path(extension_dirs())
    if path:
        from knack.log import get_logger
        get_logger(__name__).warning(clash_message(path))
    return path
