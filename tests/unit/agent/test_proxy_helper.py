"""agent/proxy_helper.py: where the agent lives (private, per az configuration), the line format, and helpers
racing to start one agent."""
import os
import socket
import subprocess
import sys
import threading

import pytest

from azext_bastion_native.agent import proxy_helper


def _environ(short_tmp, config='cfg'):
    return {'XDG_RUNTIME_DIR': str(short_tmp), 'AZURE_CONFIG_DIR': str(short_tmp / config), 'HOME': str(short_tmp)}


def test_paths_are_private_and_one_per_az_configuration(short_tmp):
    first = proxy_helper.agent_paths(_environ(short_tmp))
    assert os.stat(first.directory).st_mode & 0o777 == 0o700
    assert os.path.dirname(first.socket) == first.directory
    second = proxy_helper.agent_paths(_environ(short_tmp, 'other'))
    assert second.socket != first.socket and second.directory == first.directory
    assert len(os.path.basename(first.socket)) <= 24     # AF_UNIX paths: about 104 bytes at most


NOBODY = 65534
SYSTEM_PYTHON = '/usr/bin/python3'      # one every user may run (the venv's lives under /root here)


def _hostile_environ(short_tmp):
    """XDG_RUNTIME_DIR, TMPDIR and HOME of the test's own, each a private directory of ours."""
    for name in ('run', 'tmp', 'home'):
        (short_tmp / name).mkdir(mode=0o700)
    return {'XDG_RUNTIME_DIR': str(short_tmp / 'run'), 'TMPDIR': str(short_tmp / 'tmp'),
            'HOME': str(short_tmp / 'home'), 'AZURE_CONFIG_DIR': str(short_tmp / 'cfg')}


def test_an_open_foreign_or_linked_agent_directory_is_passed_over_never_used(short_tmp):
    environ = _hostile_environ(short_tmp)
    in_tmp = os.path.join(environ['TMPDIR'], f'az-bastion-agent-{os.getuid()}')
    planted = short_tmp / 'run' / 'az-bastion-agent'
    decoy = short_tmp / 'decoy'
    decoy.mkdir(mode=0o700)
    for plant, words in ((lambda: planted.mkdir(mode=0o755), 'mode 0755'),
                         (lambda: (planted.mkdir(mode=0o700), os.chown(planted, NOBODY, NOBODY)), 'uid 65534'),
                         (lambda: planted.symlink_to(decoy), 'a symlink')):
        plant()
        paths = proxy_helper.agent_paths(environ)
        assert paths.directory == in_tmp
        assert any(note.startswith(str(planted)) and words in note for note in paths.notes), paths.notes
        os.close(paths.open(paths.log, os.O_WRONLY | os.O_CREAT))
        assert os.path.exists(os.path.join(in_tmp, os.path.basename(paths.log)))
        assert not os.listdir(decoy)
        if planted.is_symlink():
            planted.unlink()
        else:
            planted.rmdir()


@pytest.mark.parametrize('mode, owner, words', [(0o777, None, 'writable by others (mode 0777)'),
                                                (0o700, NOBODY, 'owned by uid 65534')])
def test_a_runtime_directory_others_could_write_to_is_not_used(short_tmp, mode, owner, words):
    environ = _hostile_environ(short_tmp)
    runtime = short_tmp / 'run'
    runtime.chmod(mode)
    if owner is not None:
        os.chown(runtime, owner, owner)
    paths = proxy_helper.agent_paths(environ)
    assert paths.directory == os.path.join(environ['TMPDIR'], f'az-bastion-agent-{os.getuid()}')
    assert not os.listdir(runtime)
    assert any(note.startswith(f'XDG_RUNTIME_DIR {runtime}') and words in note for note in paths.notes)


def test_a_tmp_directory_squatted_by_another_user_falls_back_to_a_directory_in_home(short_tmp):
    environ = _hostile_environ(short_tmp)
    del environ['XDG_RUNTIME_DIR']
    squatted = short_tmp / 'tmp' / f'az-bastion-agent-{os.getuid()}'
    squatted.mkdir(mode=0o777)
    os.chown(squatted, NOBODY, NOBODY)
    paths = proxy_helper.agent_paths(environ)
    assert paths.directory == os.path.join(environ['HOME'], '.cache', 'az-bastion-agent')
    assert os.stat(paths.directory).st_mode & 0o777 == 0o700
    assert any('owner uid 65534' in note for note in paths.notes), paths.notes
    os.close(paths.descriptor)
    os.chown(paths.directory, NOBODY, NOBODY)   # and if even that one is taken, the reasons say it all
    with pytest.raises(proxy_helper.AgentUnavailable, match='no private directory for the agent: .*uid 65534'):
        proxy_helper.agent_paths(environ)


def test_files_are_reached_through_the_directory_opened_once_not_its_path(short_tmp):
    environ = _hostile_environ(short_tmp)
    paths = proxy_helper.agent_paths(environ)
    moved, decoy = short_tmp / 'moved', short_tmp / 'decoy'
    decoy.mkdir(mode=0o700)
    os.rename(paths.directory, moved)           # swapped after the check: a link to elsewhere in its place
    os.symlink(decoy, paths.directory)
    os.close(paths.open(paths.log, os.O_WRONLY | os.O_CREAT))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with listener:
        listener.bind(paths.address(paths.socket))
        assert sorted(os.listdir(moved)) == sorted(os.path.basename(path) for path in (paths.log, paths.socket))
    assert not os.listdir(decoy)


def _as_nobody(script, *args):
    """Run a Python ``script`` as uid 65534 (a second local user): its stdout."""
    result = subprocess.run([SYSTEM_PYTHON, '-I', '-c', script, *map(str, args)], user=NOBODY, group=NOBODY,
                            capture_output=True, text=True, timeout=30, check=True)
    return result.stdout


def test_the_helper_talks_only_to_an_agent_of_its_own_user(short_tmp):
    shared = short_tmp / 'shared'
    shared.mkdir()
    short_tmp.chmod(0o711)
    shared.chmod(0o777)
    paths = proxy_helper.AgentPaths(str(shared), 'agent')
    ready = threading.Event()
    server = threading.Thread(target=_as_nobody, args=(
        'import socket, sys, time\n'
        's = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(); print("ready", flush=True)\n'
        'c, _ = s.accept(); time.sleep(1)\n', paths.socket), daemon=True)
    server.start()
    for _ in range(500):
        if os.path.exists(paths.socket):
            ready.set()
            break
        threading.Event().wait(0.01)
    assert ready.is_set()
    with pytest.raises(proxy_helper.AgentUnavailable, match=r'served by another user \(uid 65534'):
        proxy_helper.connect_agent(paths)
    server.join(10)


class _SilentAgent:
    """A process-like object whose 'agent' accepts and never answers (stopped with SIGSTOP, or wedged)."""
    returncode = None

    def __init__(self, paths):
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(paths.address(paths.socket))
        self.listener.listen(16)

    def poll(self):
        return None


def test_a_stopped_agent_is_given_up_on_at_the_first_silence(short_tmp, monkeypatch):
    environ = _environ(short_tmp)
    paths = proxy_helper.agent_paths(environ)
    silent = _SilentAgent(paths)
    monkeypatch.setattr(proxy_helper, 'ANSWER_TIMEOUT', 0.3)
    monkeypatch.setattr(proxy_helper, 'agent_paths', lambda: proxy_helper.AgentPaths(
        paths.directory, os.path.basename(paths.socket)[:-5], paths.descriptor))
    asked = []
    real_ask = proxy_helper.ask
    monkeypatch.setattr(proxy_helper, 'ask', lambda *args, **kwargs: asked.append(1) or real_ask(*args, **kwargs))
    with pytest.raises(proxy_helper.AgentUnavailable, match=rf'no answer from the agent \(pid {os.getpid()}\) '
                                                            r'within 0 seconds: it is stopped or stuck'):
        proxy_helper.open_connection(proxy_helper.connect_request('rg', 'bh', '/x/vm', 22), ['az'])
    assert asked == [1]             # not asked a second time: one wait, not two
    silent.listener.close()


def test_line_format_round_trip_and_bytes_after_the_line_are_kept():
    request = proxy_helper.connect_request('rg', 'bh', '/subscriptions/s/x/vm', 22)
    message, rest = proxy_helper.split_line(proxy_helper.encode(request) + b'SSH-2.0-x')
    assert message == request and rest == b'SSH-2.0-x'
    assert proxy_helper.split_line(b'{"ok"') == (None, b'{"ok"')
    with pytest.raises(ValueError):
        proxy_helper.split_line(b'x' * (proxy_helper.MAX_LINE + 1))
    with pytest.raises(ValueError):
        proxy_helper.split_line(b'[1]\n')


class _FakeAgent:
    """What start_agent would start: a process-like object whose 'agent' listens on the socket."""

    def __init__(self, paths):
        self.returncode = None
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(paths.socket)
        listener.listen(16)
        self.listener = listener

    def poll(self):
        return self.returncode


def test_helpers_racing_start_one_agent(short_tmp):
    paths = proxy_helper.agent_paths(_environ(short_tmp))
    started, connected, barrier = [], [], threading.Barrier(6)

    def start(paths_, _az, _environ, _extra):
        started.append(_FakeAgent(paths_))
        return started[-1]

    def helper():
        barrier.wait()
        connected.append(proxy_helper.connect_or_start(paths, ['az'], timeout=10, start=start))
    threads = [threading.Thread(target=helper) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert len(connected) == 6 and len(started) == 1
    for sock in connected:
        sock.close()
    started[0].listener.close()


def test_a_stale_socket_of_a_crashed_agent_gets_a_new_agent(short_tmp):
    paths = proxy_helper.agent_paths(_environ(short_tmp))
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(paths.socket)         # bound, never listening, then gone: connect() is refused
    dead.close()
    started = []

    def start(paths_, *_):
        os.unlink(paths_.socket)    # the agent replaces the stale file (it holds the lock)
        started.append(_FakeAgent(paths_))
        return started[-1]
    proxy_helper.connect_or_start(paths, ['az'], timeout=10, start=start).close()
    assert len(started) == 1
    started[0].listener.close()


def test_an_agent_that_cannot_start_is_one_line_from_its_log(short_tmp):
    paths = proxy_helper.agent_paths(_environ(short_tmp))

    class Failed:
        returncode = 1

        def poll(self):
            return 1

    def start(paths_, *_):
        with open(paths_.log, 'a', encoding='utf-8') as log:
            log.write("ERROR: Please run 'az login' to setup account.\n")
        return Failed()
    with pytest.raises(proxy_helper.AgentUnavailable, match="could not start: ERROR: Please run 'az login'"):
        proxy_helper.connect_or_start(paths, ['az'], timeout=10, start=start)


def test_sessions_are_journaled_in_a_private_directory_of_the_az_configuration(short_tmp):
    environ = _hostile_environ(short_tmp)
    descriptor = proxy_helper.journal_directory(environ)
    try:
        journal = os.path.join(environ['AZURE_CONFIG_DIR'], 'bastion-sessions')
        assert os.path.samestat(os.fstat(descriptor), os.stat(journal))
        assert os.stat(journal).st_mode & 0o777 == 0o700
    finally:
        os.close(descriptor)
    assert not os.listdir(environ['TMPDIR'])             # nothing left in a temp directory
    os.chown(journal, NOBODY, NOBODY)
    with pytest.raises(proxy_helper.AgentUnavailable, match='owner uid 65534'):
        proxy_helper.journal_directory(environ)


def test_the_modules_every_command_imports_load_where_posix_open_flags_do_not_exist():
    """Windows has no O_DIRECTORY, O_NOFOLLOW nor O_CLOEXEC; every connecting command imports these modules."""
    script = ('import os\n'
              'for name in ("O_DIRECTORY", "O_NOFOLLOW", "O_CLOEXEC"):\n'
              '    delattr(os, name)\n'
              'import azext_bastion_native.agent.proxy_helper, azext_bastion_native.dataplane.client\n')
    subprocess.run([sys.executable, '-c', script], check=True, timeout=60, cwd=os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
