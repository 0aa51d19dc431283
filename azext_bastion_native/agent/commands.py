"""`az network bastion agent start | stop | status`: the connection agent for users who want control of it (ssh's
ProxyCommand helper starts it by itself when needed). POSIX only: on Windows ssh-config keeps `az ... proxy`."""

import os
import time

from knack.log import get_logger

from azext_bastion_native.errors import Kind, Refused

logger = get_logger(__name__)

STOP_TIMEOUT = 30.0
ANSWER_TIMEOUT = 10.0       # seconds for the agent to answer status or stop


def _paths():
    from azext_bastion_native.agent.proxy_helper import AgentUnavailable, agent_paths
    from azext_bastion_native.clients.local_tunnel import unix_sockets_supported
    if not unix_sockets_supported():
        raise Refused('The connection agent needs Unix sockets, which this system does not offer to OpenSSH.',
                      'On Windows, ssh-config writes `az network bastion proxy` as the ProxyCommand instead.',
                      Kind.VALIDATION)
    try:
        paths = agent_paths()
    except AgentUnavailable as err:
        raise Refused(str(err), 'Set XDG_RUNTIME_DIR or TMPDIR to a directory of yours that no one else may write to.',
                      Kind.FILE_OPERATION) from None
    for note in paths.notes:
        logger.debug('agent directory: %s', note)
    logger.debug('agent directory: %s', paths.directory)
    return paths


def _ask(paths, operation, timeout=ANSWER_TIMEOUT, **fields):
    """(the agent's answer to ``operation`` (with ``fields``) or None when no agent answers, the pid of an agent that
    accepted the question and said nothing within ``timeout`` seconds: stopped with SIGSTOP, or stuck)."""
    import socket
    from azext_bastion_native.agent.proxy_helper import (PROTOCOL_VERSION, AgentUnavailable, ask, connect_agent,
                                                         peer_credentials)
    try:
        sock = connect_agent(paths)
    except AgentUnavailable as err:
        logger.warning('%s', err)
        return None, None
    except OSError:
        return None, None
    try:
        answer, _ = ask(sock, {'v': PROTOCOL_VERSION, 'op': operation, **fields}, timeout=timeout)
        return answer, None
    except socket.timeout:
        peer = peer_credentials(sock)
        pid = peer[0] if peer else '?'
        logger.warning('The agent (pid %s) takes connections but does not answer: it is stopped (SIGSTOP) or stuck. '
                       '`kill -CONT %s` resumes a stopped one; `kill -KILL %s` ends it, and the next connection '
                       'starts a new agent.', pid, pid, pid)
        return None, pid
    except (OSError, ValueError):
        return None, None
    finally:
        sock.close()


def _status(paths):
    answer, silent = _ask(paths, 'status')
    if silent:
        return {'running': True, 'answering': False, 'pid': silent, 'socket': paths.socket}
    if not answer or not answer.get('ok'):
        return {'running': False, 'socket': paths.socket}
    return {'running': True, **answer['status']}


def agent_status(cmd):  # pylint: disable=unused-argument
    return _status(_paths())


def agent_start(cmd, idle_timeout=None, foreground=False):
    from azext_bastion_native.agent.server import DEFAULT_IDLE_TIMEOUT
    paths = _paths()
    idle_timeout = float(idle_timeout) if idle_timeout is not None else DEFAULT_IDLE_TIMEOUT
    if foreground:
        _run_in_foreground(cmd.cli_ctx, paths, idle_timeout)
        return None
    status = _status(paths)
    if status['running']:
        logger.warning('The agent is already running (pid %s).', status['pid'])
        return status
    from azext_bastion_native.agent.proxy_helper import AgentUnavailable, connect_or_start
    from azext_bastion_native.connect.proxy_command import az_argv
    try:
        connect_or_start(paths, az_argv(), extra_args=['--idle-timeout', str(idle_timeout)]).close()
    except AgentUnavailable as err:
        raise Refused(f'The agent did not start: {err}', f'See its log: {paths.log}', Kind.LOCAL) from None
    return _status(paths)


def _run_in_foreground(cli_ctx, paths, idle_timeout):
    from azext_bastion_native.agent.hosts import BastionHosts
    from azext_bastion_native.agent.server import AlreadyRunning, ConnectionAgent, run_agent
    from azext_bastion_native.connect.engine_logs import route_engine_logs
    route_engine_logs()
    agent = ConnectionAgent(paths, BastionHosts(cli_ctx), idle_timeout=idle_timeout)
    try:
        reason = run_agent(agent)
    except AlreadyRunning:
        logger.warning('Another agent is already serving %s.', paths.socket)
        return
    logger.info('agent %s exited (%s); every session it opened has been deleted.', os.getpid(), reason)


def agent_stop(cmd, forward=None):  # pylint: disable=unused-argument
    paths = _paths()
    if forward is not None:
        return _stop_forward(paths, forward)
    answer, silent = _ask(paths, 'stop')
    if silent:
        return {'running': True, 'answering': False, 'stopped': False, 'pid': silent, 'socket': paths.socket}
    if not answer or not answer.get('ok'):
        return {'running': False, 'socket': paths.socket}
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline and _pid_alive(answer.get('pid')):
        time.sleep(0.05)
    stopped = not _pid_alive(answer.get('pid'))
    if not stopped:
        logger.warning('The agent (pid %s) has not exited yet; it is still deleting sessions.', answer.get('pid'))
    return {'running': not stopped, 'stopped': stopped, 'pid': answer.get('pid'), 'socket': paths.socket}


def _stop_forward(paths, number):
    """`agent stop --forward ID`: that background forward's ready line and "stopped"; the agent goes on."""
    listed = 'Run `az network bastion agent status` to list the forwards and their ids.'
    if number < 1:
        raise Refused(f'--forward {number} is not the id of a forward (ids count from 1).', listed,
                      Kind.INVALID_ARGUMENT)
    answer, silent = _ask(paths, 'stop_forward', timeout=STOP_TIMEOUT, forward=number)
    if silent:
        raise Refused(f'The agent (pid {silent}) does not answer, so forward {number} was not stopped.',
                      f'`kill -CONT {silent}` resumes a stopped agent; then try again.', Kind.LOCAL)
    if not answer:
        raise Refused(f'No connection agent runs (socket {paths.socket}), so no background forward does either.',
                      'Start one with `az network bastion forward ... --background`.', Kind.NOT_FOUND)
    if answer.get('unknown'):
        raise Refused(f'The agent runs no forward with id {number}.', listed, Kind.NOT_FOUND)
    if not answer.get('ok'):
        raise Refused(f"The agent did not stop forward {number}: {answer.get('error')}",
                      'Stop the agent with `az network bastion agent stop` and start the forward again.', Kind.LOCAL)
    if not answer['stopped']:
        logger.warning('Forward %s has not ended yet; it is still deleting its sessions.', number)
    return {key: answer[key] for key in ('id', 'forwards', 'socks', 'stopped')}


def _pid_alive(pid):
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (our own child, not yet reaped) is gone for our purpose.
    try:
        with open(f'/proc/{int(pid)}/stat', encoding='ascii') as handle:
            return handle.read().split(') ', 1)[1][:1] != 'Z'
    except (OSError, IndexError):
        return True
