"""clients/launch.py: the foreground process runner (exit codes, signals) and program lookup (never from the current
directory)."""
import os
import signal
import subprocess
import sys
import time

import pytest

from azext_bastion_native.clients import launch, ssh

VM_ID = '/subscriptions/S1/resourceGroups/My-RG/providers/Microsoft.Compute/virtualMachines/Vm-1'


# -- foreground runner ----------------------------------------------------------------------------------------
def test_exit_code_is_the_programs():
    assert launch.run_foreground([sys.executable, '-c', 'raise SystemExit(42)']) == 42
    assert launch.run_foreground([sys.executable, '-c', 'pass']) == 0


@pytest.mark.skipif(os.name == 'nt', reason='POSIX signals')
def test_killed_program_reports_128_plus_signal():
    assert launch.run_foreground([sys.executable, '-c', 'import os, signal; os.kill(os.getpid(), signal.SIGKILL)']) \
        == 128 + signal.SIGKILL


class _FakeProcess:
    def __init__(self, ignores_interrupt):
        self.ignores_interrupt = ignores_interrupt
        self.returncode = None
        self.calls = []
        self._first = True

    def wait(self, timeout=None):
        if self._first:
            self._first = False
            raise KeyboardInterrupt
        self.calls.append(('wait', timeout))
        if self.returncode is None and self.ignores_interrupt:
            raise subprocess.TimeoutExpired('x', timeout)
        self.returncode = self.returncode if self.returncode is not None else -2
        return self.returncode

    def poll(self):
        return self.returncode

    def terminate(self):
        self.calls.append(('terminate', None))
        self.returncode = -15

    def kill(self):
        self.calls.append(('kill', None))
        self.returncode = -9


def test_ctrl_c_waits_for_the_program_then_reports_130():
    process = _FakeProcess(ignores_interrupt=False)
    assert launch.run_foreground(['x'], popen=lambda *a, **k: process, grace=0.01) == 130
    assert ('terminate', None) not in process.calls


def test_ctrl_c_terminates_a_program_that_does_not_stop():
    process = _FakeProcess(ignores_interrupt=True)
    assert launch.run_foreground(['x'], popen=lambda *a, **k: process, grace=0.01) == 130
    assert ('terminate', None) in process.calls


@pytest.mark.skipif(os.name == 'nt', reason='POSIX signals')
def test_sigterm_unwinds_instead_of_killing():
    code = [sys.executable, '-c', 'import time; time.sleep(30)']
    before = signal.getsignal(signal.SIGTERM)
    with launch.termination_unwinds():
        import threading
        timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM))
        timer.start()
        started = time.monotonic()
        assert launch.run_foreground(code, grace=2) == 128 + signal.SIGTERM
        assert time.monotonic() - started < 10
    assert signal.getsignal(signal.SIGTERM) is before


# -- programs are never taken from the current directory ---------------------------------------------------
def _windows_files(*paths):
    """isfile() of a Windows machine holding ``paths`` (case-insensitive, as NTFS)."""
    present = {path.lower() for path in paths}
    return lambda path: path.lower() in present


WINDOWS_PATH = r'C:\Windows\System32;C:\Windows\System32\OpenSSH\;"C:\Program Files\Microsoft SDKs\Azure\CLI2\wbin"'


@pytest.mark.parametrize('name, found', [
    ('ssh', r'C:\Windows\System32\OpenSSH\ssh.exe'),
    ('scp', r'C:\Windows\System32\OpenSSH\scp.exe'),
    ('mstsc', r'C:\Windows\System32\mstsc.exe'),
    ('az', r'C:\Program Files\Microsoft SDKs\Azure\CLI2\wbin\az.cmd'),
    ('wlfreerdp', None),
])
def test_windows_programs_come_from_path_never_from_the_current_directory(name, found):
    """A checked-out repository holding ssh.exe, scp.exe, mstsc.exe, wlfreerdp.exe and az.bat is the current
    directory (and '.' is on PATH): shutil.which() on Windows would pick those first."""
    planted = [rf'.\{program}' for program in ('ssh.exe', 'scp.exe', 'mstsc.exe', 'wlfreerdp.exe', 'az.bat')]
    planted += [rf'C:\src\repo\{program}' for program in ('ssh.exe', 'scp.exe', 'mstsc.exe', 'wlfreerdp.exe',
                                                          'az.bat')]
    isfile = _windows_files(*planted, r'C:\Windows\System32\OpenSSH\ssh.exe', r'C:\Windows\System32\OpenSSH\scp.exe',
                            r'C:\Windows\System32\mstsc.exe',
                            r'C:\Program Files\Microsoft SDKs\Azure\CLI2\wbin\az.cmd')
    environ = {'PATH': '.;;repo;' + WINDOWS_PATH, 'PATHEXT': '.COM;.EXE;.BAT;.CMD'}
    assert launch.find_program(name, 'nt', environ, isfile=isfile) == found


def test_windows_program_names_with_an_extension_and_without_pathext():
    isfile = _windows_files(r'C:\Windows\System32\mstsc.exe')
    assert launch.find_program('mstsc.exe', 'nt', {'PATH': r'C:\Windows\System32'}, isfile=isfile) \
        == r'C:\Windows\System32\mstsc.exe'
    assert launch.find_program('mstsc', 'nt', {'Path': r'C:\Windows\System32'}, isfile=isfile) \
        == r'C:\Windows\System32\mstsc.exe'
    assert launch.find_program(r'.\mstsc.exe', 'nt', {'PATH': r'C:\Windows\System32'}, isfile=isfile) is None


def test_posix_relative_path_entries_are_skipped():
    files = {'./ssh', 'bin/ssh', '/usr/bin/ssh'}
    environ = {'PATH': '.::bin:/usr/bin'}
    assert launch.find_program('ssh', 'posix', environ, isfile=files.__contains__,
                               access=lambda *_: True) == '/usr/bin/ssh'
    assert launch.find_program('ssh', 'posix', {'PATH': '.:bin'}, isfile=files.__contains__,
                               access=lambda *_: True) is None


def test_every_client_lookup_uses_find_program_by_default():
    import inspect
    from azext_bastion_native.clients import rdp
    from azext_bastion_native.connect.environment import Environment
    assert Environment().which is launch.find_program
    assert inspect.signature(ssh.find_ssh).parameters['which'].default is launch.find_program
    assert inspect.signature(rdp.find_launcher).parameters['which'].default is launch.find_program


def test_scp_is_looked_up_with_find_program(monkeypatch):
    from azext_bastion_native.connect import file as file_transfer
    monkeypatch.setattr(launch, 'find_program', lambda name: rf'C:\OpenSSH\{name}.exe')
    assert file_transfer.find_scp() == r'C:\OpenSSH\scp.exe'
