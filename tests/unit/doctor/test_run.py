"""doctor/run.py: the facts gathered for each check without Azure: bad arguments refused, what is skipped and why
when an earlier fact is missing, a session minted only when its prerequisites passed, and exit status 3 on a
failure only. (End to end against the emulator: tests/e2e/test_doctor.py.)"""
from types import SimpleNamespace

import pytest

from azext_bastion_native import side_by_side
from azext_bastion_native.doctor import checks, probe, run
from azext_bastion_native.doctor.checks import FAIL, PASS, SKIP, WARN, Asked, CheckRow, Failure, ProbeResult
from azext_bastion_native.errors import Kind, Refused
from azext_bastion_native.management import nsg as management_nsg
from tests.unit.cli_context import RecordingCli
from tests.unit.nsg.nsg_json import arm_rule, compliant, nsg_of

VM_ID = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1'
ASKED = Asked('rg', 'bh', 22, VM_ID)


@pytest.mark.parametrize('arguments, kind, phrase', [
    ({'target_resource_id': VM_ID, 'target_ip_address': '10.0.0.4'}, Kind.MUTUALLY_EXCLUSIVE, 'at most one'),
    ({'resource_port': 0}, Kind.INVALID_ARGUMENT, '--resource-port 0 is not a port'),
    ({'method': 'telnet'}, Kind.INVALID_ARGUMENT, '--method must be one of ssh, rdp, tunnel'),
])
def test_bad_arguments_are_refused_before_any_check(arguments, kind, phrase):
    with pytest.raises(Refused) as refused:
        run.run_doctor(None, 'rg', 'bh', **arguments)
    assert refused.value.kind is kind and phrase in refused.value.message


def test_not_signed_in_skips_what_needs_azure_and_reads_nothing(monkeypatch):
    def no_azure(*_, **__):
        raise AssertionError('nothing is read from Azure without a sign-in')
    monkeypatch.setattr(run, '_sign_in_failure', lambda _: Failure('Please run az login to set up an account.'))
    monkeypatch.setattr(run, '_read_host', no_azure)
    monkeypatch.setattr(run, '_read_vm', no_azure)
    monkeypatch.setattr(side_by_side, 'installed_path', lambda _dirs: None)
    found = run.run_doctor(None, 'rg', 'bh', target_resource_id=VM_ID, environ={}, which=lambda _: '/usr/bin/ssh',
                           system='Linux')
    rows = {row.check: row for row in found}
    assert rows['Signed in'].status == FAIL
    assert [rows[name].status for name in ('Bastion host', 'Native client', 'Target VM', 'NSG', 'Data plane')] == \
        [SKIP] * 5
    assert rows['Target VM'].detail == 'Not signed in.' and rows['Network'].status == SKIP
    assert rows['Local client'].status == PASS                        # the local checks still run
    assert 'Side-by-side extension' not in rows


def _host(dns_name='bst-1.bastion.azure.com'):
    return SimpleNamespace(dns_name=dns_name, id='/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/'
                                                 'bastionHosts/bh')


def test_a_session_is_minted_only_when_its_prerequisites_passed(monkeypatch):
    handshakes, sessions = [], []
    monkeypatch.setattr(probe, 'tls_handshake', lambda host, settings: handshakes.append(host) or 'tls result')
    monkeypatch.setattr(run, '_session_probe', lambda *args: sessions.append(args) or 'session result')
    failed = [CheckRow('Bastion host', PASS, ''), CheckRow('Target VM', FAIL, '')]
    assert run._probe_data_plane(None, _host(), failed, ASKED) == ('tls result', 'No session tried: Target VM failed.')
    assert run._probe_data_plane(None, _host(), [CheckRow('NSG', FAIL, '')], ASKED) == ('session result', '')
    assert len(sessions) == 1 and handshakes == ['bst-1.bastion.azure.com']


def test_without_a_target_or_a_dns_name_no_session_is_tried(monkeypatch):
    monkeypatch.setattr(probe, 'tls_handshake', lambda host, settings: 'tls result')
    result, why = run._probe_data_plane(None, _host(), [], Asked('rg', 'bh', 22))
    assert result == 'tls result' and why.startswith('Give --target-resource-id or --target-ip-address')
    assert run._probe_data_plane(None, _host(dns_name=None), [], ASKED) == \
        (None, 'The host has no DNS name (not read, or still deploying).')


def test_a_session_the_preflight_refuses_falls_back_to_the_handshake(monkeypatch):
    from azext_bastion_native.connect.preflight import PreflightError
    monkeypatch.setattr(probe, 'tls_handshake', lambda host, settings: 'tls result')

    def refused(*_):
        raise PreflightError(Kind.VALIDATION, 'the host does not have native client support (tunneling) enabled.')
    monkeypatch.setattr(run, '_session_probe', refused)
    assert run._probe_data_plane(None, _host(), [], ASKED) == \
        ('tls result', 'No session tried: the host does not have native client support (tunneling) enabled.')


@pytest.mark.parametrize('nsg, failure, port, status, denies', [
    (compliant(), None, 22, PASS, False),
    (compliant(), None, 2222, FAIL, True),                              # DenyOtherVnetOutbound takes 2222
    (nsg_of(*compliant()['properties']['securityRules'],
            arm_rule('allow-2222', 'Outbound', 300, '*', 'VirtualNetwork', '2222')), None, 2222, PASS, False),
    (None, None, 2222, PASS, False),                                    # no NSG: nothing denies
    (None, Failure('Network security group was not found.'), 22, WARN, None),      # unknown, not "allowed"
])
def test_the_nsg_row_and_whether_it_denies_the_target_port(monkeypatch, nsg, failure, port, status, denies):
    monkeypatch.setattr(run, '_read_nsg', lambda *_: (nsg, failure))
    row, denied = run._nsg_row(None, {'properties': {}}, Asked('rg', 'bh', port, VM_ID))
    assert (row.status, denied) == (status, denies)
    assert run._nsg_row(None, None, ASKED) == (checks.skipped('NSG', 'The host was not read.'), None)


def test_an_nsg_read_refused_is_a_row_not_an_exception(monkeypatch):
    def refused(*_):
        raise Refused("Bastion host 'bh' has no IP configuration with a subnet.", 'Check the host.')
    monkeypatch.setattr(management_nsg, 'find_bastion_subnet', refused)
    assert run._read_nsg(None, 'rg', 'bh') == (None, Failure("Bastion host 'bh' has no IP configuration with a "
                                                             'subnet.', 'Check the host.'))


def test_exit_3_names_the_failed_checks_and_warnings_do_not_fail(caplog):
    cli = RecordingCli()
    run.exit_when_failed(cli, [CheckRow('Signed in', PASS, ''), CheckRow('NSG', WARN, '')])
    assert cli.handlers == []
    run.exit_when_failed(cli, [CheckRow('Signed in', PASS, ''), CheckRow('NSG', FAIL, ''),
                               CheckRow('Target VM', FAIL, '')])
    with pytest.raises(SystemExit) as exited:
        cli.handlers[0](cli)
    assert exited.value.code == 3
    assert '2 check(s) failed (NSG, Target VM); the Fix column says what to do.' in caplog.text


def test_a_probe_result_row_reaches_the_output_as_a_dict():
    row = checks.check_data_plane(ProbeResult('tls', 'bst-1:443', True, elapsed_ms=12))
    assert row.as_dict() == {'check': 'Data plane', 'status': PASS, 'detail': 'TLS handshake with bst-1:443 in 12 ms.',
                             'fix': ''}
