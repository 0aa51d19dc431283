"""The demo: what a user sees, run against the local emulator (scripts/demo.sh sets everything up first).

Each step prints the command it runs and what it answered; everything it started is stopped at the end."""

import os
import shlex
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AZ = os.path.join(os.path.dirname(sys.executable), 'az')


def run(env, *args, check=True):
    print(f'\n$ az {shlex.join(args)}', flush=True)
    result = subprocess.run([AZ, *args], env=env, check=False)
    if check and result.returncode != 0:
        raise SystemExit(f'demo step failed (exit {result.returncode}): az {shlex.join(args)}')
    return result.returncode


def main():
    with tempfile.TemporaryDirectory(prefix='bastion-native-demo-') as workdir:
        env = dict(os.environ, AZURE_CONFIG_DIR=os.path.join(workdir, 'az'), AZURE_EXTENSION_DEV_SOURCES=REPO,
                   AZURE_CORE_COLLECT_TELEMETRY='false')
        run(env, 'network', 'bastion', '-h')
        run(env, 'network', 'bastion', 'nsg', 'show', '--ports', '22', '3389', '-o', 'table')
    print('\ndemo finished', flush=True)


if __name__ == '__main__':
    main()
