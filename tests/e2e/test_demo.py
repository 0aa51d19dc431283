"""The demo (scripts/demo.py, what `bash scripts/demo.sh` runs after setting up) as a user runs it, with no
terminal: it finishes, every command it prints is the one it runs, and it leaves nothing behind - no process (the
connection agent its ssh config block starts, the sshd, the emulator), no file in the temp directory (its work
directory, the agent's files), no copy of its 10 MB file on the "VM" (this machine)."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from bastion_emulator.testing.sshd import sshd_available

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def _shim(bin_dir: Path, program: str, log: Path):
    """``program`` on PATH as a wrapper that logs its parent pid and argv, then runs the real one."""
    real = shutil.which(program)
    shim = bin_dir / program
    shim.write_text(f'#!/bin/sh\n{sys.executable} -c \'import json, sys; '
                    f'open(sys.argv[1], "a").write(json.dumps([int(sys.argv[2]), sys.argv[3:]]) + "\\n")\' '
                    f'{log} "$PPID" "{program}" "$@"\nexec {real} "$@"\n', encoding='utf-8')
    shim.chmod(0o755)


def _processes_with(text: str):
    """Processes whose environment mentions ``text`` (the demo's temp directory)."""
    found = []
    for environ in Path('/proc').glob('[0-9]*/environ'):
        try:
            if text.encode() in environ.read_bytes():
                found.append(environ.parent.name)
        except OSError:
            pass
    return found


@pytest.mark.skipif(not sshd_available(), reason='needs OpenSSH sshd (apt-get install openssh-server)')
def test_the_demo_runs_what_it_prints_and_leaves_nothing_behind(tmp_path):
    # the demo's sshd reads keys from its temp directory as its login user: one that user can enter
    temp = Path(tempfile.mkdtemp(prefix='bn-demo-', dir='/tmp'))
    temp.chmod(0o755)
    try:
        _run_demo_and_check(tmp_path, temp)
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def _run_demo_and_check(tmp_path, temp):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    log = tmp_path / 'ran.jsonl'
    for program in ('ssh', 'scp'):
        _shim(bin_dir, program, log)
    env = {k: v for k, v in os.environ.items() if k not in ('XDG_RUNTIME_DIR', 'AZURE_CONFIG_DIR')}
    env.update(TMPDIR=str(temp), PATH=f"{bin_dir}:{env.get('PATH', os.defpath)}")
    demo = subprocess.Popen(  # pylint: disable=consider-using-with
        [sys.executable, str(REPO / 'scripts' / 'demo.py')], env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = demo.communicate(timeout=900)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode == 0, (out[-3000:], err[-3000:])
    assert 'everything it started has stopped' in out

    printed = [line[2:] for line in out.splitlines() if line.startswith('$ ')]
    ran = [json.loads(line) for line in log.read_text(encoding='utf-8').splitlines()]
    ours = [shlex.join(argv) for parent, argv in ran if parent == demo.pid]
    assert ours, 'the demo ran no ssh or scp of its own'
    for command in ours:
        assert command in printed, f'ran but not printed as run: {command}'
    assert any(line.startswith('az network bastion agent stop') for line in printed)

    assert not list(temp.iterdir()), list(temp.iterdir())
    assert _processes_with(str(temp)) == []
    copied = set(re.findall(r'/tmp/bastion-native-demo-[0-9a-f]+\.bin', out))
    assert copied and not [path for path in copied if os.path.exists(path)]
