"""Foreground child processes: argv only (never a shell), exit code back, Ctrl+C handled.

Run a native program in the foreground (it owns the terminal) and give back its exit code. Ctrl+C: the terminal sends
SIGINT to the whole foreground group, so the child has it too; we give it a moment to finish, then end it, so the
caller's clean-up (tunnel sessions, temp keys) always runs after it."""

import logging
import ntpath
import os
import posixpath
import re
import signal
import subprocess
import threading
from contextlib import contextmanager

logger = logging.getLogger(__name__)

INTERRUPTED_EXIT_CODE = 130     # 128 + SIGINT, as shells report it
STOP_GRACE_SECONDS = 5.0
WINDOWS_PATHEXT = '.COM;.EXE;.BAT;.CMD'     # cmd.exe's default when PATHEXT is unset
_WINDOWS_ABSOLUTE = re.compile(r'^(?:[A-Za-z]:[\\/]|[\\/]{2}[^\\/])')     # C:\dir or \\server\share


def find_program(name, os_name=None, environ=None, isfile=os.path.isfile, access=os.access):
    """The absolute path of program ``name`` found on PATH, or None: shutil.which() without the current directory.

    On Windows shutil.which() (and CreateProcess with a bare name) look in the current directory first, so an
    ssh.exe, mstsc.exe or az.bat planted in a checked-out repository would run instead of the real one. Here only
    absolute PATH entries count, on every OS (a relative entry such as '.' or 'bin' names the current directory
    too). ``os_name`` ('nt' | 'posix'), ``environ`` and ``isfile``/``access``: injectable for tests."""
    os_name = os_name or os.name
    environ = os.environ if environ is None else environ
    windows = os_name == 'nt'
    paths = ntpath if windows else posixpath
    if paths.dirname(name):
        return None         # a relative or absolute path is not a program name: never resolved here
    names = [name]
    if windows:
        extensions = [ext.lower() for ext in (environ.get('PATHEXT') or WINDOWS_PATHEXT).split(';') if ext]
        if not any(name.lower().endswith(ext) for ext in extensions):
            names = [name + ext for ext in extensions]
    search_path = environ.get('PATH') or (environ.get('Path') if windows else None) or ''
    for directory in search_path.split(paths.pathsep):
        directory = directory.strip().strip('"') if windows else directory
        if not (_WINDOWS_ABSOLUTE.match(directory) if windows else directory.startswith('/')):
            continue
        for candidate in (paths.join(directory, each) for each in names):
            if isfile(candidate) and (windows or access(candidate, os.X_OK)):
                return candidate
    return None


class Terminated(Exception):
    """SIGTERM or SIGHUP (terminal closed) arrived: unwind like Ctrl+C, so every clean-up runs."""

    def __init__(self, signum):
        super().__init__(f'signal {signum}')
        self.exit_code = 128 + signum


@contextmanager
def termination_unwinds():
    """Within the block, SIGTERM and SIGHUP raise Terminated in the main thread instead of killing us on the
    spot (their default), so `finally` clauses delete Bastion sessions and temporary keys. No-op elsewhere."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(signum, _frame):
        raise Terminated(signum)
    previous = {}
    for signum in (signal.SIGTERM, getattr(signal, 'SIGHUP', None)):
        if signum is not None:
            try:
                previous[signum] = signal.signal(signum, raise_terminated)
            except (ValueError, OSError):
                pass
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def exit_code_of(returncode):
    """A process's exit status as a shell reports it: 128 + N when it was killed by signal N."""
    if returncode is None:
        return 1
    return 128 - returncode if returncode < 0 else returncode


def stop_process(process, grace=STOP_GRACE_SECONDS):
    """Let ``process`` end by itself within ``grace`` seconds, else terminate it, then kill it."""
    for action in (None, process.terminate, process.kill):
        if process.poll() is not None:
            return
        if action is not None:
            try:
                action()
            except OSError:
                pass
        try:
            process.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


def run_foreground(argv, env=None, popen=subprocess.Popen, grace=STOP_GRACE_SECONDS):
    """Run ``argv`` attached to our terminal until it exits; its exit code, or 128 + N after signal N
    (Ctrl+C, or SIGTERM/SIGHUP inside termination_unwinds())."""
    logger.debug('running %s', argv[0])
    process = popen(argv, env=env)
    try:
        return exit_code_of(process.wait())
    except (KeyboardInterrupt, Terminated) as stop:
        try:
            stop_process(process, grace)
        except (KeyboardInterrupt, Terminated):     # a second signal: stop waiting politely
            process.kill()
        return stop.exit_code if isinstance(stop, Terminated) else INTERRUPTED_EXIT_CODE
