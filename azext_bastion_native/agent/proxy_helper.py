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

import errno
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
ANSWER_TIMEOUT = 25.0           # seconds to wait for the answer to "connect" (host lookup, mint, websocket)
CONNECT_TIMEOUT = 5.0           # seconds to wait for a place in the agent's backlog
POLL_INTERVAL = 0.02
AGENT_ARGS = ('network', 'bastion', 'agent', 'start', '--foreground')
ERROR_PREFIX = 'az network bastion agent: '


class AgentUnavailable(Exception):
    """No agent answers and none could be started; the message is the one line for the user."""


DIRECTORY_NAME = 'az-bastion-agent'
JOURNAL_DIRECTORY_NAME = 'bastion-sessions'
FILE_MODE = 0o600
# POSIX flags (the module is imported on Windows too, where nothing here runs).
_DIRECTORY_FLAGS = os.O_RDONLY | getattr(os, 'O_DIRECTORY', 0) | getattr(os, 'O_CLOEXEC', 0)
_NOFOLLOW = getattr(os, 'O_NOFOLLOW', 0)
_FILE_FLAGS = _NOFOLLOW | getattr(os, 'O_CLOEXEC', 0)
_PROC_FD = sys.platform.startswith('linux') and os.path.isdir('/proc/self/fd')


class AgentPaths:
    """Where one agent lives: a private (0700) directory of this user, opened once (``descriptor``), and in it, per
    az configuration directory (whose sign-in the agent uses), the socket, the agent's lock, the starters' lock and
    the log. Every file is reached through the descriptor and never through a symlink, so the directory cannot be
    swapped between the check and the use. ``notes``: why other places were passed over (said at --debug)."""

    def __init__(self, directory, name, descriptor=None, notes=()):
        self.directory = directory
        self.descriptor = descriptor
        self.notes = list(notes)
        self.socket = os.path.join(directory, name + '.sock')
        self.lock = os.path.join(directory, name + '.lock')
        self.start_lock = os.path.join(directory, name + '.start')
        self.log = os.path.join(directory, name + '.log')

    def open(self, path, flags, mode=FILE_MODE):
        """A file of this directory (one of the paths above, or a name in it), opened relative to its descriptor."""
        if self.descriptor is None:
            return os.open(path, flags | _FILE_FLAGS, mode)
        return os.open(os.path.basename(path), flags | _FILE_FLAGS, mode, dir_fd=self.descriptor)

    def unlink(self, path):
        if self.descriptor is None:
            os.unlink(path)
        else:
            os.unlink(os.path.basename(path), dir_fd=self.descriptor)

    def address(self, path):
        """The address to bind or connect a socket of this directory: through the opened directory where Linux
        offers it (/proc/self/fd, which is short too), else its path."""
        if self.descriptor is None or not _PROC_FD:
            return path
        return f'/proc/self/fd/{self.descriptor}/{os.path.basename(path)}'


def agent_paths(environ=None, uid=None):
    """The AgentPaths for this user and az configuration (AZURE_CONFIG_DIR, default ~/.azure). The directory is the
    first of these that is a private directory of ours (or that we can make one): $XDG_RUNTIME_DIR/az-bastion-agent
    when $XDG_RUNTIME_DIR is a directory of ours that nobody else may write to; $TMPDIR|/tmp/az-bastion-agent-UID;
    and, when another user holds that name in a shared /tmp, ~/.cache/az-bastion-agent. One that is not ours, not a
    directory, a symlink, or open to others is passed over, never used (the reasons are in ``notes``)."""
    environ = os.environ if environ is None else environ
    uid = os.getuid() if uid is None else uid
    home = environ.get('HOME') or os.path.expanduser('~')
    notes, candidates = [], []
    runtime = environ.get('XDG_RUNTIME_DIR')
    if runtime and os.path.isabs(runtime):
        problem = _not_private_parent(runtime, uid)
        if problem:
            notes.append(f'XDG_RUNTIME_DIR {runtime} is not used: {problem}')
        else:
            candidates.append((runtime, DIRECTORY_NAME))
    candidates.append((environ.get('TMPDIR') or '/tmp', f'{DIRECTORY_NAME}-{uid}'))
    candidates.append((os.path.join(home, '.cache'), DIRECTORY_NAME))
    for parent, name in candidates:
        directory = os.path.join(parent, name)
        try:
            descriptor = open_private_directory(parent, name, uid)
        except AgentUnavailable as err:
            notes.append(f'{directory} is not used: {err}')
            continue
        config = _config_directory(environ)
        config_name = hashlib.sha256(os.path.realpath(config).encode('utf-8', 'surrogateescape')).hexdigest()[:16]
        return AgentPaths(directory, config_name, descriptor, notes)
    raise AgentUnavailable('no private directory for the agent: ' + '; '.join(notes))


def _config_directory(environ):
    return environ.get('AZURE_CONFIG_DIR') or os.path.join(environ.get('HOME') or os.path.expanduser('~'), '.azure')


def journal_directory(environ=None, uid=None):
    """A descriptor of the private directory where Bastion sessions are journaled (dataplane/journal.py):
    bastion-sessions in the az configuration directory whose sign-in minted them. Unlike the agent's directory it
    does not move with TMPDIR or XDG_RUNTIME_DIR, which may differ from one run to the next, and it leaves nothing
    in a temp directory. AgentUnavailable says why there is none."""
    environ = os.environ if environ is None else environ
    return open_private_directory(_config_directory(environ), JOURNAL_DIRECTORY_NAME,
                                  os.getuid() if uid is None else uid)


def _not_private_parent(path, uid):
    """Why ``path`` may not hold our directory (empty when it may): it must be a directory of ours that no one else
    may write to (else they could swap what we put in it)."""
    try:
        info = os.stat(path)
    except OSError as err:
        return err.strerror or str(err)
    if not stat.S_ISDIR(info.st_mode):
        return 'not a directory'
    if info.st_uid != uid:
        return f'owned by uid {info.st_uid}, not by you (uid {uid})'
    if info.st_mode & 0o022:
        return f'writable by others (mode {stat.S_IMODE(info.st_mode):04o})'
    return ''


def open_private_directory(parent, name, uid):
    """A descriptor of ``parent``/``name``, made 0700 if it is not there: opened without following a symlink, and
    only when it is a directory owned by ``uid`` that no one else may open (AgentUnavailable says why not)."""
    try:
        os.makedirs(parent, 0o700, exist_ok=True)
        parent_descriptor = os.open(parent, _DIRECTORY_FLAGS)
    except OSError as err:
        raise AgentUnavailable(f'cannot open {parent}: {err.strerror or err}') from None
    try:
        try:
            os.mkdir(name, 0o700, dir_fd=parent_descriptor)
        except FileExistsError:
            pass
        descriptor = os.open(name, _DIRECTORY_FLAGS | _NOFOLLOW, dir_fd=parent_descriptor)
    except OSError as err:
        raise AgentUnavailable('a symlink or not a directory' if err.errno in (errno.ELOOP, errno.ENOTDIR)
                               else (err.strerror or str(err))) from None
    finally:
        os.close(parent_descriptor)
    info = os.fstat(descriptor)
    if info.st_uid != uid or stat.S_IMODE(info.st_mode) & 0o077:
        os.close(descriptor)
        owner = 'yours' if info.st_uid == uid else f'uid {info.st_uid}'
        raise AgentUnavailable(f'not a private directory of yours (owner {owner}, mode '
                               f'{stat.S_IMODE(info.st_mode):04o}; it must be yours, mode 0700)')
    return descriptor


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


def ask(sock, message, timeout=None):
    """Send ``message``; (answer, bytes that came after it). The answer is None when the agent closed first.
    ``timeout``: seconds for the answer (default ANSWER_TIMEOUT); socket.timeout when it does not come."""
    sock.settimeout(ANSWER_TIMEOUT if timeout is None else timeout)
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


def peer_credentials(sock):
    """(pid, uid, gid) of the process at the other end of a Unix socket; None where SO_PEERCRED does not exist."""
    option = getattr(socket, 'SO_PEERCRED', None)
    if option is None:
        return None
    import struct
    return struct.unpack('3i', sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize('3i')))


def connect_agent(paths, timeout=CONNECT_TIMEOUT):
    """A socket connected to the agent of ``paths``: OSError when none listens, AgentUnavailable when the process
    listening is another user's (the socket is never used then). A full backlog is waited out, bounded."""
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(paths.address(paths.socket))
            peer = peer_credentials(sock)
            break
        except BlockingIOError:         # the agent's backlog is full (AF_UNIX says EAGAIN, not EINPROGRESS)
            sock.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(POLL_INTERVAL)
        except OSError:
            sock.close()
            raise
    if peer is not None and peer[1] != os.getuid():
        sock.close()
        raise AgentUnavailable(f'{paths.socket} is served by another user (uid {peer[1]}, pid {peer[0]}), not by '
                               'your agent: refused.')
    return sock


def start_agent(paths, az_argv, environ=None, extra_args=()):
    """The agent as a background process of its own (new session: ssh's terminal and pipes are not its own),
    its stderr appended to the log in the private directory."""
    import subprocess     # here: a helper that finds the agent running never pays for the import
    log = paths.open(paths.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        return subprocess.Popen([*az_argv, *AGENT_ARGS, *extra_args],  # pylint: disable=consider-using-with
                                stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=log, close_fds=True, start_new_session=True,
                                env=dict(os.environ if environ is None else environ))
    finally:
        os.close(log)


def _log_size(paths):
    try:
        descriptor = paths.open(paths.log, os.O_RDONLY)
    except OSError:
        return 0
    try:
        return os.fstat(descriptor).st_size
    finally:
        os.close(descriptor)


def _last_log_line(paths, since):
    try:
        with os.fdopen(paths.open(paths.log, os.O_RDONLY), 'rb') as handle:
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
        return connect_agent(paths)
    except OSError:
        pass
    deadline = time.monotonic() + timeout
    descriptor = paths.open(paths.start_lock, os.O_WRONLY | os.O_CREAT)
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
            return connect_agent(paths)         # started by the helper that held the lock before us
        except OSError:
            pass
        log_size = _log_size(paths)
        process = start(paths, az_argv, environ, extra_args)
        while time.monotonic() < deadline:
            try:
                return connect_agent(paths)
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
    answer). An agent that closes without answering (it was stopping) is asked once more, a new one if need be;
    one that does not answer within ANSWER_TIMEOUT (stopped, wedged) is given up on at once."""
    for attempt in range(attempts):
        sock = connect_or_start(agent_paths(), az_argv)
        try:
            answer, rest = ask(sock, request)
        except socket.timeout:
            peer = peer_credentials(sock)
            sock.close()
            pid = peer[0] if peer else '?'
            raise AgentUnavailable(f'no answer from the agent (pid {pid}) within {ANSWER_TIMEOUT:.0f} seconds: it '
                                   f'is stopped or stuck; `kill {pid}` ends it, and the next connection starts a '
                                   'new one.') from None
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
