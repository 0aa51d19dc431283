"""Managing hosts as scripts do: `wait` after `--no-wait`, and the api-version every Microsoft.Network request
carries (pinned; a cloud that does not serve it gets a typed error naming it)."""

import subprocess
import time

import pytest

from tests.e2e.arrange import RG, bastion_requests, make_public_ip, make_vnet, refused, unique

pytestmark = pytest.mark.e2e

PINNED_VERSION = '2024-05-01'


def _create(az, network, name, *extra):
    make_vnet(network, name + '-vnet')
    make_public_ip(network, name + '-ip')
    return az('network', 'bastion', 'create', '-g', RG, '-n', name, '--vnet-name', name + '-vnet',
              '--public-ip-address', name + '-ip', *extra)


def test_wait_deleted_after_delete_no_wait_returns_0(az, network):
    name = unique('gone')
    _create(az, network, name)
    assert az('network', 'bastion', 'delete', '-g', RG, '-n', name, '--yes', '--no-wait').returncode == 0
    waited = az('network', 'bastion', 'wait', '-g', RG, '-n', name, '--deleted', '--interval', '1',
                '--timeout', '60', check=False)
    assert waited.returncode == 0, waited.stderr
    refused(az('network', 'bastion', 'show', '-g', RG, '-n', name, check=False), 'not found')


def test_wait_exists_polls_until_the_host_appears(az, network, emulator):
    name = unique('soon')
    make_vnet(network, name + '-vnet')
    make_public_ip(network, name + '-ip')
    waiting = subprocess.Popen(  # pylint: disable=consider-using-with
        [az.executable, 'network', 'bastion', 'wait', '-g', RG, '-n', name, '--exists', '--interval', '1',
         '--timeout', '90'], env=az.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not bastion_requests(emulator, name, methods=('GET',)):    # its first look found nothing
            assert waiting.poll() is None, waiting.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.2)
        time.sleep(1.5)
        assert waiting.poll() is None, waiting.communicate()    # still polling, not failed on the 404
        _create(az, network, name, '--no-wait')
        _, err = waiting.communicate(timeout=60)
    finally:
        if waiting.poll() is None:
            waiting.kill()
    assert waiting.returncode == 0, err


def test_wait_updated_on_a_missing_host_still_fails_clearly(az):
    result = az('network', 'bastion', 'wait', '-g', RG, '-n', 'no-such-host', '--updated', '--interval', '1',
                '--timeout', '5', check=False)
    refused(result, 'no-such-host')


def test_every_network_request_carries_the_pinned_api_version(az, network, emulator):
    name = unique('pin')
    make_vnet(network, name + '-vnet')          # arranged with the SDK's own default version: not counted
    make_public_ip(network, name + '-ip')
    emulator.delete('/_emulator/requests')
    az('network', 'bastion', 'create', '-g', RG, '-n', name, '--vnet-name', name + '-vnet',
       '--public-ip-address', name + '-ip')     # GET vnet, GET public IP, PUT host, the LRO polls
    az('network', 'bastion', 'show', '-g', RG, '-n', name)
    seen = [r for r in emulator.get('/_emulator/requests').json()['requests']
            if 'microsoft.network' in r['path'].lower() and 'api-version=' in r['query']
            and r['listener'] == 'main']
    mine = [r for r in seen if name in r['path']]
    assert {r['method'] for r in mine} >= {'GET', 'PUT'}
    assert any('/operations/' in r['path'] for r in seen)          # the long-running operation's polls too
    versions = {r['query'].split('api-version=')[1].split('&')[0] for r in seen}
    assert versions == {PINNED_VERSION}, versions


def test_a_cloud_without_the_pinned_version_gets_a_typed_error(az, emulator):
    emulator.post('/_emulator/api-versions', json={'namespace': 'microsoft.network',
                                                   'withdraw': [PINNED_VERSION]}).raise_for_status()
    try:
        result = az('network', 'bastion', 'show', '-g', RG, '-n', 'demo-bastion', check=False)
    finally:
        emulator.delete('/_emulator/api-versions').raise_for_status()
    refused(result, PINNED_VERSION, 'NoRegisteredProviderFound', 'az cloud show')
    assert result.stdout == ''
