#!/usr/bin/env python
"""What a new ssh connection through ssh-config's block costs locally, and the connection agent's memory, against a
fleet (bastion_emulator.testing.fleet: an emulator, az signed in, 8 VMs each with a real sshd).

- Overhead of `ssh -F CONFIG web-1 true` over the same ssh straight to web-1's sshd (the ceiling measured in the
  same run), median of --runs, for (a) the agent warm, (b) the agent cold (stopped before each run: the helper
  starts it), (c) `az network bastion proxy` as ProxyCommand (--no-agent). Targets: warm <= 50 ms; cold <= proxy.
- `ansible all -m ping` wall time across the 8 VMs, through the agent and through the proxy path.
- The agent's RSS idle (after one connection has come and gone: its one-off costs - the data-plane client, TLS
  context, imports - are not a live connection's), with 64 live connections (8 to each VM's sshd, waiting in its
  login grace time), and a few seconds after they closed; the growth per live connection.

    .venv/bin/python bench/fleet.py [--runs 20] [--memory-only] [--json out.json]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'emulator'))
sys.path.insert(0, str(REPO))

from bastion_emulator.testing.fleet import FLEET_RG, start_fleet  # noqa: E402  pylint: disable=wrong-import-position
from azext_bastion_native.agent import proxy_helper  # noqa: E402  pylint: disable=wrong-import-position

ANSIBLE = str(Path(sys.executable).parent / 'ansible')
WARM_TARGET_MS = 50
LIVE_CONNECTIONS = 64
SETTLE_S = 3.0          # seconds after connections close before RSS is read (freed memory is trimmed after 1 s)


def _run(argv, env, timeout=300):
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:6])}... failed: {result.stdout[-1500:]} {result.stderr[-1500:]}")
    return (time.perf_counter() - start) * 1000


def _agent_pid(env):
    status = json.loads(subprocess.run([*_az(env), 'network', 'bastion', 'agent', 'status', '-o', 'json'], env=env,
                                       capture_output=True, text=True, check=True).stdout)
    return status.get('pid'), status


def _az(_env):
    return [str(Path(sys.executable).parent / 'az')]


def _stop_agent(env):
    """Stop through the socket (no az start-up) and wait for the process to be gone."""
    paths = proxy_helper.agent_paths(env)
    try:
        sock = proxy_helper.connect_agent(paths)
    except (OSError, proxy_helper.AgentUnavailable):
        return
    with sock:
        answer, _ = proxy_helper.ask(sock, {'v': proxy_helper.PROTOCOL_VERSION, 'op': 'stop'}, timeout=10)
    pid = (answer or {}).get('pid')
    deadline = time.monotonic() + 30
    while pid and os.path.exists(f'/proc/{pid}') and time.monotonic() < deadline:
        with open(f'/proc/{pid}/stat', encoding='ascii') as handle:
            if handle.read().split(') ', 1)[1][:1] == 'Z':
                break
        time.sleep(0.01)


def _rss_mib(pid):
    with open(f'/proc/{pid}/status', encoding='ascii') as handle:
        for line in handle:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    return None


def _configs(fleet, home):
    """(agent config, proxy config, direct config, inventory for each) in ``home``."""
    user = next(iter(fleet.sshds.values())).user
    known = f"Host *\n    UserKnownHostsFile {home / 'known_hosts'}\n"
    made = {}
    for kind, extra in (('agent', []), ('proxy', ['--no-agent'])):
        config = home / f'{kind}.config'
        config.write_text(known, encoding='utf-8')
        subprocess.run([*_az(fleet.az_env), 'network', 'bastion', 'ssh-config', '-g', 'demo-rg', '-n', 'demo-bastion',
                        '--vm-resource-group', FLEET_RG, '--username', user, '--ssh-key', str(fleet.client_key),
                        '--file', str(config), '--inventory', str(home / f'{kind}.yml'), *extra],
                       env=fleet.az_env, check=True, capture_output=True)
        made[kind] = config
    direct = home / 'direct.config'
    direct.write_text(''.join(
        f'Host {vm}\n    HostName {sshd.host}\n    Port {sshd.port}\n    User {user}\n'
        f'    IdentityFile {fleet.client_key}\n    IdentitiesOnly yes\n    StrictHostKeyChecking accept-new\n'
        for vm, sshd in fleet.sshds.items()) + known, encoding='utf-8')
    made['direct'] = direct
    return made


def _ssh(config):
    return ['ssh', '-F', str(config), '-o', 'BatchMode=yes', 'web-1', 'true']


def measure_connections(fleet, configs, runs):
    env = fleet.az_env
    for kind in ('direct', 'agent', 'proxy'):       # warm-up: host keys pinned, .pyc written, agent started
        _run(_ssh(configs[kind]), env)
    samples = {'direct': [], 'agent_warm': [], 'proxy': []}
    for _ in range(runs):           # alternate, so drift on a shared machine hits each path alike
        samples['direct'].append(_run(_ssh(configs['direct']), env))
        samples['agent_warm'].append(_run(_ssh(configs['agent']), env))
        samples['proxy'].append(_run(_ssh(configs['proxy']), env))
    samples['agent_cold'] = []
    for _ in range(runs):
        _stop_agent(env)
        samples['agent_cold'].append(_run(_ssh(configs['agent']), env))
    direct = statistics.median(samples['direct'])
    result = {'runs': runs, 'direct_ssh_ms': round(direct, 1)}
    for kind in ('agent_warm', 'agent_cold', 'proxy'):
        result[f'{kind}_ms'] = round(statistics.median(samples[kind]), 1)
        result[f'{kind}_overhead_ms'] = round(statistics.median(samples[kind]) - direct, 1)
    result['warm_target_met'] = result['agent_warm_overhead_ms'] <= WARM_TARGET_MS
    result['cold_not_slower_than_proxy'] = result['agent_cold_ms'] <= result['proxy_ms']
    return result


def measure_ansible(fleet, home):
    env = dict(fleet.az_env, ANSIBLE_LOCAL_TEMP=str(home / 'ansible-tmp'),
               ANSIBLE_SSH_CONTROL_PATH_DIR=str(home / 'cp'),
               ANSIBLE_SSH_ARGS='-o ControlMaster=no',  # a new connection per task: what the config path costs
               ANSIBLE_TIMEOUT='120')   # ssh's 10 s default: five az start-ups at once on 2 cores can take longer
    result = {}
    _run([ANSIBLE, '-i', str(home / 'agent.yml'), 'all', '-m', 'ping'], env)    # interpreter discovery, agent up
    for kind in ('agent', 'proxy'):
        result[f'ansible_ping_{kind}_ms'] = round(_run([ANSIBLE, '-i', str(home / f'{kind}.yml'), 'all', '-m',
                                                        'ping'], env), 1)
    return result


def _helpers(fleet, env, count):
    """``count`` proxy helpers, each a live connection through the agent to a VM's sshd (round robin)."""
    return [subprocess.Popen(  # pylint: disable=consider-using-with
        [sys.executable, '-I', '-S', proxy_helper.__file__, 'demo-rg', 'demo-bastion',
         fleet.vm_id(f'web-{number % len(fleet.sshds) + 1}'), '22', '-', *_az(env)],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for number in range(count)]


def _until_live(env, count, timeout=120):
    deadline = time.monotonic() + timeout
    status = {}
    while time.monotonic() < deadline:
        _, status = _agent_pid(env)
        if status.get('liveConnections') == count:
            break
        time.sleep(0.5)
    return status


def measure_memory(fleet):
    env = fleet.az_env
    _stop_agent(env)
    subprocess.run([*_az(env), 'network', 'bastion', 'agent', 'start'], env=env, check=True, capture_output=True)
    pid, _ = _agent_pid(env)
    warm = _helpers(fleet, env, 1)          # the one-off costs of a first connection, then idle again
    _until_live(env, 1)
    for helper in warm:
        helper.kill()
        helper.wait()
    _until_live(env, 0)
    time.sleep(SETTLE_S)
    idle = _rss_mib(pid)
    result = {'agent_rss_idle_mib': round(idle, 1)}
    helpers = []
    try:
        helpers = _helpers(fleet, env, LIVE_CONNECTIONS)
        status = _until_live(env, LIVE_CONNECTIONS)
        result['live_connections'] = status.get('liveConnections')
        result['sessions_open'] = status.get('sessionsOpen')
        live = _rss_mib(pid)
        result[f'agent_rss_{LIVE_CONNECTIONS}_live_mib'] = round(live, 1)
        result['agent_rss_mib_per_live_connection'] = round((live - idle) / LIVE_CONNECTIONS, 3)
    finally:
        for helper in helpers:
            helper.kill()
            helper.wait()
    _until_live(env, 0)
    time.sleep(SETTLE_S)
    result['agent_rss_after_mib'] = round(_rss_mib(pid), 1)
    _stop_agent(env)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--runs', type=int, default=20)
    parser.add_argument('--memory-only', action='store_true', help="only the agent's memory figures")
    parser.add_argument('--json', help='also write the JSON here')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix='bastion-fleet-bench-') as workdir:
        workdir = Path(workdir)
        fleet = start_fleet(workdir / 'fleet')
        runtime = workdir / 'runtime'
        runtime.mkdir(mode=0o700)
        fleet.az_env['XDG_RUNTIME_DIR'] = str(runtime)
        try:
            home = workdir / 'home'
            home.mkdir()
            result = {}
            if not args.memory_only:
                configs = _configs(fleet, home)
                result = measure_connections(fleet, configs, args.runs)
                result.update(measure_ansible(fleet, home))
            result.update(measure_memory(fleet))
        finally:
            _stop_agent(fleet.az_env)
            fleet.stop()
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + '\n', encoding='utf-8')


if __name__ == '__main__':
    main()
