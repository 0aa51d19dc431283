"""agent/proxy_helper.py: where the agent lives (private, per az configuration), the line format, and helpers
racing to start one agent."""
import os
import socket
import threading

import pytest

from azext_bastion_native.agent import proxy_helper


def _environ(tmp_path, config='cfg'):
    return {'XDG_RUNTIME_DIR': str(tmp_path), 'AZURE_CONFIG_DIR': str(tmp_path / config), 'HOME': str(tmp_path)}


def test_paths_are_private_and_one_per_az_configuration(tmp_path):
    first = proxy_helper.agent_paths(_environ(tmp_path))
    assert os.stat(first.directory).st_mode & 0o777 == 0o700
    assert os.path.dirname(first.socket) == first.directory
    second = proxy_helper.agent_paths(_environ(tmp_path, 'other'))
    assert second.socket != first.socket and second.directory == first.directory
    assert len(os.path.basename(first.socket)) <= 24     # AF_UNIX paths: about 104 bytes at most


def test_an_open_or_foreign_directory_is_refused_never_used(tmp_path):
    directory = tmp_path / 'az-bastion-agent'
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    with pytest.raises(proxy_helper.AgentUnavailable, match='not a private directory'):
        proxy_helper.agent_paths(_environ(tmp_path))
    directory.chmod(0o700)
    with pytest.raises(proxy_helper.AgentUnavailable, match='not a private directory'):
        proxy_helper.agent_paths(_environ(tmp_path), uid=os.getuid() + 1)
    directory.rmdir()
    directory.symlink_to(tmp_path)
    with pytest.raises(proxy_helper.AgentUnavailable):
        proxy_helper.agent_paths(_environ(tmp_path))


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


def test_helpers_racing_start_one_agent(tmp_path):
    paths = proxy_helper.agent_paths(_environ(tmp_path))
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


def test_a_stale_socket_of_a_crashed_agent_gets_a_new_agent(tmp_path):
    paths = proxy_helper.agent_paths(_environ(tmp_path))
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


def test_an_agent_that_cannot_start_is_one_line_from_its_log(tmp_path):
    paths = proxy_helper.agent_paths(_environ(tmp_path))

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
