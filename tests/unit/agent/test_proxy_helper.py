"""agent/proxy_helper.py: where the agent lives (private, per az configuration), the line format, and helpers
racing to start one agent."""
import os
import socket
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


def test_an_open_or_foreign_directory_is_refused_never_used(short_tmp):
    directory = short_tmp / 'az-bastion-agent'
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    with pytest.raises(proxy_helper.AgentUnavailable, match='not a private directory'):
        proxy_helper.agent_paths(_environ(short_tmp))
    directory.chmod(0o700)
    with pytest.raises(proxy_helper.AgentUnavailable, match='not a private directory'):
        proxy_helper.agent_paths(_environ(short_tmp), uid=os.getuid() + 1)
    directory.rmdir()
    directory.symlink_to(short_tmp)
    with pytest.raises(proxy_helper.AgentUnavailable):
        proxy_helper.agent_paths(_environ(short_tmp))


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
