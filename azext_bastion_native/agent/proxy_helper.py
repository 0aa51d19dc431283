"""ssh's ProxyCommand through the connection agent: ask the agent for one connection ("target, port") on its
Unix socket, then splice stdin/stdout to it; when no agent answers, start one in the background and wait for its
socket (bounded), so the first ssh just works.

ssh runs it as `python -I -S proxy_helper.py RG NAME TARGET PORT SUBSCRIPTION|- AZ_ARGV...` with a Python that
does not have the extension on sys.path (and, -S, no site-packages at all: their .pth files cost more than the rest
of a warm connection): the standard library only, never an import of azext_bastion_native. The splice
is the stand-alone clients/unix_socket_proxy.py beside it, loaded by path. The agent (agent/server.py) imports the
socket location and the line format from here, so both ends share one definition.

Wire: one JSON line each way before any relayed byte. Request {"v": 1, "op": "connect"|"status"|"stop", ...};
answer {"ok": true, ...} or {"ok": false, "error": "one line for the user"}. After an ok to "connect" the socket
carries the target's bytes both ways."""

import hashlib
import json
import os
import socket
import stat
import sys
import time

PROTOCOL_VERSION = 1
MAX_LINE = 64 * 1024            # a request or answer line, at most
START_TIMEOUT = 90.0            # seconds to wait for a new agent's socket (an az start-up and the sign-in)
ANSWER_TIMEOUT = 120.0          # seconds to wait for the answer to "connect" (host lookup, mint, websocket)
POLL_INTERVAL = 0.02
AGENT_ARGS = ('network', 'bastion', 'agent', 'start', '--foreground')
ERROR_PREFIX = 'az network bastion agent: '


class AgentUnavailable(Exception):
    """No agent answers and none could be started; the message is the one line for the user."""


class AgentPaths:  # pylint: disable=too-few-public-methods
    """Where one agent lives: a private (0700) directory of this user, and in it, per az configuration
    directory (whose sign-in the agent uses), the socket, the agent's lock, the starters' lock and the log."""

    def __init__(self, directory, name):
        self.directory = directory
        self.socket = os.path.join(directory, name + '.sock')
        self.lock = os.path.join(directory, name + '.lock')
        self.start_lock = os.path.join(directory, name + '.start')
        self.log = os.path.join(directory, name + '.log')


def agent_paths(environ=None, uid=None, create=True):
    """The AgentPaths for this user and az configuration (AZURE_CONFIG_DIR, default ~/.azure). The directory is
    $XDG_RUNTIME_DIR/az-bastion-agent (private by design) or $TMPDIR|/tmp/az-bastion-agent-UID, made 0700; one
    that is not ours, not a directory, or open to others is refused (AgentUnavailable), never used."""
    environ = os.environ if environ is None else environ
    uid = os.getuid() if uid is None else uid
    runtime = environ.get('XDG_RUNTIME_DIR')
    if runtime and os.path.isabs(runtime):
        directory = os.path.join(runtime, 'az-bastion-agent')
    else:
        directory = os.path.join(environ.get('TMPDIR') or '/tmp', f'az-bastion-agent-{uid}')
    if create:
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            pass
        except OSError as err:
            raise AgentUnavailable(f'cannot make the agent directory {directory}: {err.strerror or err}') from None
        check_private_directory(directory, uid)
    config = environ.get('AZURE_CONFIG_DIR') or os.path.join(environ.get('HOME') or os.path.expanduser('~'),
                                                             '.azure')
    name = hashlib.sha256(os.path.realpath(config).encode('utf-8', 'surrogateescape')).hexdigest()[:16]
    return AgentPaths(directory, name)


def check_private_directory(directory, uid):
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid or info.st_mode & 0o077:
        raise AgentUnavailable(f'{directory} is not a private directory of yours (mode 0700, owned by you); '
                               'remove it and try again.')


def encode(message):
    return json.dumps(message, separators=(',', ':')).encode('utf-8') + b'\n'


def split_line(data):
    """(the JSON object of the first line, the bytes after it) or (None, data) while no line is complete."""
    head, newline, rest = bytes(data).partition(b'\n')
    if not newline:
        if len(data) > MAX_LINE:
            raise ValueError('line too long')
        return None, data
    message = json.loads(head.decode('utf-8'))
    if not isinstance(message, dict):
        raise ValueError('not a JSON object')
    return message, rest


def connect_request(resource_group, name, target, port, subscription=None):
    return {'v': PROTOCOL_VERSION, 'op': 'connect', 'resource_group': resource_group, 'name': name,
            'target': target, 'port': int(port), 'subscription': subscription or None}


def ask(sock, message, timeout=ANSWER_TIMEOUT):
    """Send ``message``; (answer, bytes that came after it). The answer is None when the agent closed first."""
    sock.settimeout(timeout)
    sock.sendall(encode(message))
    data = b''
    while True:
        answer, rest = split_line(data)
        if answer is not None:
            return answer, rest
        chunk = sock.recv(MAX_LINE)
        if not chunk:
            return None, b''
        data += chunk


def _connect(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    return sock


def start_agent(paths, az_argv, environ=None, extra_args=()):
    """The agent as a background process of its own (new session: ssh's terminal and pipes are not its own),
    its stderr appended to the log in the private directory."""
    import subprocess     # here: a helper that finds the agent running never pays for the import
    log = os.open(paths.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        return subprocess.Popen([*az_argv, *AGENT_ARGS, *extra_args],  # pylint: disable=consider-using-with
                                stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=log, close_fds=True, start_new_session=True,
                                env=dict(os.environ if environ is None else environ))
    finally:
        os.close(log)


def _last_log_line(paths, since):
    try:
        with open(paths.log, 'rb') as handle:
            handle.seek(since)
            lines = [line.strip() for line in handle.read().decode('utf-8', 'replace').splitlines()]
    except OSError:
        return ''
    lines = [line for line in lines if line]
    return lines[-1] if lines else ''


def connect_or_start(paths, az_argv, timeout=START_TIMEOUT, start=start_agent, environ=None, extra_args=()):
    """A socket connected to the agent, starting it when none answers. Helpers racing here start one agent:
    they queue on the starters' lock and each looks for a live socket again once it holds it."""
    import fcntl  # POSIX only, like the agent
    try:
        return _connect(paths.socket)
    except OSError:
        pass
    deadline = time.monotonic() + timeout
    descriptor = os.open(paths.start_lock, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise AgentUnavailable('timed out waiting for another helper to start the agent') from None
                time.sleep(POLL_INTERVAL)
        try:
            return _connect(paths.socket)       # started by the helper that held the lock before us
        except OSError:
            pass
        log_size = os.path.getsize(paths.log) if os.path.exists(paths.log) else 0
        process = start(paths, az_argv, environ, extra_args)
        while time.monotonic() < deadline:
            try:
                return _connect(paths.socket)
            except OSError:
                pass
            if process.poll() is not None and process.returncode != 0:
                said = _last_log_line(paths, log_size) or f'exit code {process.returncode}'
                raise AgentUnavailable(f'the agent could not start: {said}')
            time.sleep(POLL_INTERVAL)
        raise AgentUnavailable(f'the agent did not open {paths.socket} within {timeout:.0f} seconds '
                               f'(its log: {paths.log})')
    finally:
        os.close(descriptor)        # releases the lock


def _splice(sock):
    import importlib.util
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'clients',
                        'unix_socket_proxy.py')
    spec = importlib.util.spec_from_file_location('unix_socket_proxy', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.relay(sock)


def open_connection(request, az_argv, attempts=2):
    """Ask the agent (starting it when needed) for ``request``; (connected socket, bytes already read past the
    answer). An agent that closes without answering (it was stopping) is asked once more, a new one if need be."""
    for attempt in range(attempts):
        sock = connect_or_start(agent_paths(), az_argv)
        try:
            answer, rest = ask(sock, request)
        except (OSError, ValueError) as err:
            sock.close()
            if attempt + 1 == attempts:
                raise AgentUnavailable(f'no answer from the agent: {getattr(err, "strerror", None) or err}') \
                    from None
            continue
        if answer is None:
            sock.close()
            time.sleep(0.2)
            continue
        if not answer.get('ok'):
            sock.close()
            raise AgentUnavailable(str(answer.get('error') or 'the agent refused the connection'))
        return sock, rest
    raise AgentUnavailable('the agent closed the connection without an answer')


def main(argv):
    import signal
    # Ctrl+C reaches the whole process group: end quietly, as nc or socat would, not with a traceback.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if len(argv) < 7:
        sys.stderr.write('usage: proxy_helper.py RESOURCE_GROUP NAME TARGET_RESOURCE_ID PORT SUBSCRIPTION|- '
                         'AZ_ARGV...\n')
        return 2
    resource_group, name, target, port, subscription = argv[1:6]
    request = connect_request(resource_group, name, target, port, None if subscription == '-' else subscription)
    try:
        sock, rest = open_connection(request, argv[6:])
    except (AgentUnavailable, OSError) as err:
        sys.stderr.write(f'{ERROR_PREFIX}{getattr(err, "strerror", None) or err}\n')
        return 255
    sock.settimeout(None)
    with sock:
        while rest:
            rest = rest[os.write(1, rest):]
        _splice(sock)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
