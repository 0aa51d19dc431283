"""The data-plane client of one command run: its connection settings with azure-cli's User-Agent, and the journal
of its Bastion sessions."""
import logging
import os


def data_plane_settings():
    """The data plane's connection settings from the environment, with azure-cli's User-Agent beside ours (e.g.
    AZURECLI/2.91.0 bastion-native/0.1.0): dataplane/ imports nothing from azure.cli, so the versions come from here."""
    from importlib.metadata import PackageNotFoundError, version
    from azure.cli.core import __version__ as az_version
    from azext_bastion_native.dataplane.settings import ConnectionSettings, client_user_agent
    try:
        ours = version('bastion-native')
    except PackageNotFoundError:
        ours = None
    return ConnectionSettings.from_environ(user_agent=client_user_agent(az_version, ours))


def data_plane_client(endpoint, get_arm_token):
    """The DataPlaneClient of one command run, its sessions journaled (see session_journal)."""
    from azext_bastion_native.dataplane.client import DataPlaneClient
    return DataPlaneClient(endpoint, get_arm_token, settings=data_plane_settings(), journal=session_journal())


def session_journal():
    """The journal of this run's Bastion sessions, in a private directory of the az configuration (see
    agent.proxy_helper.journal_directory): whatever command runs next deletes the sessions of a run killed before it
    could. None where there is no such directory."""
    from azext_bastion_native.agent.proxy_helper import AgentUnavailable, journal_directory
    from azext_bastion_native.dataplane.journal import SessionJournal
    if not hasattr(os, 'getuid'):
        return None                     # Windows: no private directory of the kind (nor an agent)
    try:
        return SessionJournal(journal_directory())
    except AgentUnavailable as err:
        logging.getLogger(__name__).debug('Bastion sessions are not journaled: %s', err)
        return None
