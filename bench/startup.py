#!/usr/bin/env python
"""Start-up cost of the extension (docs/ARCHITECTURE.md, Measurements): `az network bastion -h` against `az network -h`,
measured in the same run, median of N alternating runs each. Target: no slower by more than 50 ms.

    .venv/bin/python bench/startup.py [--runs 9] [--json out.json]
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
AZ = str(Path(sys.executable).parent / 'az')
TARGET_MS = 50
COMMANDS = {'az network -h': ['network', '-h'], 'az network bastion -h': ['network', 'bastion', '-h'],
            'az network bastion nsg show': ['network', 'bastion', 'nsg', 'show', '-o', 'none']}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--runs', type=int, default=9)
    parser.add_argument('--json', help='also write the JSON here')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix='bastion-startup-') as config:
        env = dict(os.environ, AZURE_CONFIG_DIR=config, AZURE_EXTENSION_DEV_SOURCES=str(REPO),
                   AZURE_CORE_COLLECT_TELEMETRY='false')
        for argv in COMMANDS.values():      # warm: the command index and .pyc files are built once
            subprocess.run([AZ, *argv], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        samples = {name: [] for name in COMMANDS}
        for _ in range(args.runs):          # alternate, so drift on a shared machine hits every command alike
            for name, argv in COMMANDS.items():
                start = time.perf_counter()
                subprocess.run([AZ, *argv], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               check=False)
                samples[name].append((time.perf_counter() - start) * 1000)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    extra = medians['az network bastion -h'] - medians['az network -h']
    result = {'median_ms': medians, 'samples_ms': samples, 'bastion_help_minus_network_help_ms': extra,
              'target_ms': TARGET_MS, 'pass': extra <= TARGET_MS}
    for name, value in medians.items():
        print(f'{name:32} {value:8.0f} ms')
    print(f"{'bastion -h minus network -h':32} {extra:+8.0f} ms  (target <= {TARGET_MS}: "
          f"{'PASS' if result['pass'] else 'FAIL'})")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2), encoding='utf-8')


if __name__ == '__main__':
    main()
