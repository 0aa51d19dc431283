"""Every ```bash block of README.md runs as written, against a private emulator (its blocks change hosts) with real
sshds behind linux-vm and linux-vm-2, each block its own `bash -euo pipefail`, with a home of its own: ssh reads
~/.ssh from the account's home (not from $HOME) and a block may write ~/.ssh/config, so each block runs in a mount
namespace whose /root is a temporary directory (the Python under /root stays visible). What the test gives a block
is what a reader of the README has: az (the project's venv) and ansible on PATH, az signed in to the emulator, the
extension as a dev extension, a key in ~/.ssh/id_ed25519 that the VMs trust, a copy of the repository as the current
directory, and the variables the README names ($VM_ID, $HOST_ID, $HOST_A, $HOST_B, $RG, $VNET, $PIP). A block the
sandbox cannot run says why in an HTML comment `<!-- not run: REASON -->` right before it."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from bastion_emulator.testing.sandbox import EmulatorProcess, az_environment
from bastion_emulator.testing.sshd import sshd_available, start_sshd
from tests.conftest import network_client

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
README = REPO / 'README.md'
HOME = Path('/root')
RG = 'demo-rg'
_FENCE = re.compile(r'^(\s*)```bash\s*$')
_NOT_RUN = re.compile(r'^\s*<!--\s*not run:\s*(\S.*?)\s*-->\s*$')


def readme_blocks(text):
    """[(line number, code, reason it is not run or None)] for each ```bash block."""
    lines, blocks, index = text.splitlines(), [], 0
    while index < len(lines):
        fence = _FENCE.match(lines[index])
        if not fence:
            index += 1
            continue
        start, indent, body = index + 1, len(fence.group(1)), []
        index += 1
        while index < len(lines) and lines[index].strip() != '```':
            body.append(lines[index][indent:] if lines[index][:indent].strip() == '' else lines[index])
            index += 1
        before = next((line for line in reversed(lines[:start - 1]) if line.strip()), '')
        marker = _NOT_RUN.match(before)
        blocks.append((start, '\n'.join(body) + '\n', marker.group(1) if marker else None))
        index += 1
    return blocks


def test_blocks_not_run_are_few_and_say_why():
    blocks = readme_blocks(README.read_text(encoding='utf-8'))
    assert len(blocks) >= 5
    skipped = [(line, reason) for line, _, reason in blocks if reason]
    assert len(skipped) <= 2, skipped
    assert all(len(reason) > 20 for _, reason in skipped), skipped


# --- the world the blocks run in -----------------------------------------------------------------------------------
def _run(argv, **kwargs):
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kwargs)


def _pids_with(text):
    """Processes whose environment has ``text`` (the variable that marks the blocks' processes)."""
    pids = []
    for environ in Path('/proc').glob('[0-9]*/environ'):
        try:
            if text.encode() in environ.read_bytes():
                pids.append(int(environ.parent.name))
        except OSError:
            pass
    return pids


def _network(emulator, env):
    token = subprocess.run([shutil.which('az', path=str(Path(sys.executable).parent)), 'account',
                            'get-access-token', '--query', 'accessToken', '-o', 'tsv'], env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    return network_client(emulator, token)


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    if os.geteuid() != 0 or not shutil.which('unshare') or not sshd_available() or \
            subprocess.run(['unshare', '-m', 'true'], check=False).returncode != 0:
        pytest.skip('needs root with a mount namespace of its own (unshare -m) and OpenSSH sshd')
    base = Path(tempfile.mkdtemp(prefix='bn-readme-', dir='/tmp'))
    home, work = base / 'home', base / 'work'
    emulator = EmulatorProcess(tmp_path_factory.mktemp('readme-emulator')).start()
    sshds = []
    try:
        (home / '.ssh').mkdir(parents=True, mode=0o700)
        (home / 'tmp').mkdir()
        key = home / '.ssh' / 'id_ed25519'
        _run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'readme', '-f', str(key)])
        for name in ('linux-vm', 'linux-vm-2'):
            sshd_dir = tmp_path_factory.mktemp(f'readme-{name}')
            for suffix in ('', '.pub'):      # start_sshd keeps a client key it finds: both VMs trust this one
                shutil.copyfile(f'{key}{suffix}', sshd_dir / f'client_key{suffix}')
            sshd = start_sshd(sshd_dir, user_ca_pub=emulator.ready.get('user_ca_pub'), login_user='azureuser')
            sshds.append(sshd)
            emulator.set_vm_endpoint(name, 22, sshd.host, sshd.port)
        root_env = az_environment(emulator, home / '.azure')
        shutil.copyfile(root_env['REQUESTS_CA_BUNDLE'], home / 'ca-bundle.pem')
        network = _network(emulator, root_env)
        from tests.e2e.arrange import make_public_ip, make_vnet
        make_vnet(network, 'readme-vnet')
        make_public_ip(network, 'readme-ip')
        shutil.copytree(REPO, work, symlinks=True,
                        ignore=shutil.ignore_patterns('.git', '.venv', '__pycache__', 'dist', 'build'))
        (work / '.venv').symlink_to(REPO / '.venv')
        hosts = f"/subscriptions/{emulator.ready['subscription']}/resourceGroups/{RG}/providers/Microsoft.Network/"
        variables = {
            'VM_ID': emulator.resource_id('Microsoft.Compute/virtualMachines', 'linux-vm'),
            'HOST_ID': hosts + 'bastionHosts/demo-bastion', 'HOST_A': hosts + 'bastionHosts/demo-bastion',
            'HOST_B': hosts + 'bastionHosts/basic-bastion', 'RG': RG, 'VNET': 'readme-vnet', 'PIP': 'readme-ip'}
        env = {'HOME': str(HOME), 'USER': 'root', 'LOGNAME': 'root', 'SHELL': '/bin/bash', 'LANG': 'C.UTF-8',
               'PATH': f"{REPO / '.venv' / 'bin'}:/usr/local/bin:/usr/bin:/bin", 'TMPDIR': str(HOME / 'tmp'),
               'AZURE_CONFIG_DIR': str(HOME / '.azure'), 'REQUESTS_CA_BUNDLE': str(HOME / 'ca-bundle.pem'),
               'AZURE_EXTENSION_DEV_SOURCES': str(REPO), 'AZURE_CORE_COLLECT_TELEMETRY': 'false',
               'AZURE_CORE_NO_COLOR': 'true', 'PYTHONDONTWRITEBYTECODE': '1', 'BASTION_README_RUN': base.name,
               **variables}
        yield {'env': env, 'work': work, 'home': home, 'emulator': emulator}
    finally:
        for pid in _pids_with(f'BASTION_README_RUN={base.name}'):  # the blocks' own: the agent, ssh masters
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        for sshd in sshds:
            sshd.stop()
        emulator.stop()
        shutil.rmtree(base, ignore_errors=True)


def _run_block(world, code, timeout=300):
    """(exit code, stdout, stderr): the output through files, not pipes, that a process the block leaves running
    (the connection agent, an ssh control master) may hold open."""
    env = dict(world['env'])
    if 'az extension add' in code:
        # the wheel goes into an az configuration of its own, as on a machine with no dev extension
        env.pop('AZURE_EXTENSION_DEV_SOURCES')
        env['AZURE_CONFIG_DIR'] = str(HOME / '.azure-wheel')
    # /root is the block's home; what the interpreter needs from the real /root (e.g. ~/.pyenv) is bound into it
    binds = []
    for prefix in {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix)}:
        if Path(prefix).is_relative_to(HOME):
            top = Path(prefix).relative_to(HOME).parts[0]
            (world['home'] / top).mkdir(exist_ok=True)
            binds.append(f'mount --bind {HOME / top} {world["home"] / top}')
    setup = ' && '.join(['mount --make-rprivate /', *binds, f'mount --rbind {world["home"]} {HOME}'])
    argv = ['unshare', '-m', 'sh', '-c', setup + ' && exec "$@"', 'sh', 'env', '-i',
            *[f'{k}={v}' for k, v in env.items()], 'bash', '-euo', 'pipefail', '-c', code]
    out, err = world['home'].parent / 'block.out', world['home'].parent / 'block.err'
    with open(out, 'w', encoding='utf-8') as stdout, open(err, 'w', encoding='utf-8') as stderr:
        code = subprocess.run(argv, cwd=world['work'], stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                              timeout=timeout, check=False).returncode
    return code, out.read_text(encoding='utf-8', errors='replace'), err.read_text(encoding='utf-8', errors='replace')


@pytest.mark.timeout(1800)
def test_every_bash_block_of_the_readme_runs_as_written(world):
    failures = []
    for line, code, reason in readme_blocks(README.read_text(encoding='utf-8')):
        if reason:
            continue
        try:
            exit_code, stdout, stderr = _run_block(world, code)
        except subprocess.TimeoutExpired:
            exit_code, stdout, stderr = 'nothing (still running after 300 s)', '', ''
        if exit_code != 0 or 'Traceback' in stderr:
            failures.append(f'README.md line {line} exited {exit_code}:\n{code}\n--- stdout\n'
                            f'{stdout[-1500:]}\n--- stderr\n{stderr[-2500:]}')
    assert not failures, '\n\n'.join(failures)
    assert world['emulator'].get('sessions').json() == []


# --- the Commands table's synopses and the commands' options ------------------------------------------------------
OPTIONS_SCRIPT = '''
import json, sys
sys.path.insert(0, sys.argv[1])
from tests import house_rules
commands, _, _ = house_rules.load_extension_commands()
print(json.dumps({c.name: [p.options for p in c.params if not p.positional] for c in commands}))
'''
# Every command takes these, and the README says so once ("Every command that names a host also takes --ids").
_EVERYWHERE = {'--ids', '--change-reference', '--acquire-policy-token', '--subscription'}
# Commands whose synopsis lists every option (the table abbreviates create/update: "[same options]").
_COMPLETE = ('tunnel', 'forward', 'proxy', 'ssh', 'rdp', 'ssh-config', 'doctor', 'file upload', 'file download')


def _synopses(text):
    """{command: its synopsis} from the first table of ## Commands."""
    start = text.index('| command | what it does |', text.index('## Commands'))
    synopses = {}
    for row in text[start:text.index('\n\n', start)].splitlines()[2:]:
        synopsis = re.search(r'`([^`]*)`', row.split(' | ')[0]).group(1).replace('\\|', '|')
        head = re.split(r' (?=-|\[|\()', synopsis, maxsplit=1)[0]
        verbs = [verb.strip() for verb in head.split('/')]
        group = verbs[0].rsplit(' ', 1)[0] if ' ' in verbs[0] else ''
        for verb in verbs:
            synopses['network bastion ' + (verb if ' ' in verb or not group else f'{group} {verb}')] = synopsis
    return synopses


def test_the_commands_table_names_each_command_s_options_as_they_are(tmp_path):
    env = dict(os.environ, AZURE_CONFIG_DIR=str(tmp_path / 'az'), AZURE_EXTENSION_DEV_SOURCES=str(REPO),
               AZURE_CORE_COLLECT_TELEMETRY='false')
    table = json.loads(subprocess.run([sys.executable, '-c', OPTIONS_SCRIPT, str(REPO)], env=env, check=True,
                                      capture_output=True, text=True, timeout=180).stdout.strip().splitlines()[-1])
    problems, synopses = [], _synopses(README.read_text(encoding='utf-8'))
    for command, synopsis in synopses.items():
        assert command in table, f'README names {command!r}, which does not exist'
        given = set(re.findall(r'(?<![\w-])(--?[a-zA-Z][a-z0-9-]*)', synopsis))
        row = [set(options) for options in table[command]]
        # a row of several verbs (file upload / download): an option of any of them
        siblings = [set(options) for name, other in table.items() if synopses.get(name) == synopsis
                    for options in other]
        problems += [f'{command}: README has {option}, the command has not' for option in sorted(given)
                     if not any(option in options for options in siblings)]
        if command.replace('network bastion ', '') in _COMPLETE:
            trailing = {'--ssh-args', '--scp-args'} if re.search(r'(^|[\s\[])-- ', synopsis) else set()
            problems += [f'{command}: {"/".join(sorted(options))} is missing from its README synopsis'
                         for options in row if not options & (given | _EVERYWHERE | trailing)]
    assert problems == [], '\n'.join(problems)
