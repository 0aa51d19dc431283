"""dataplane/journal.py and the client's use of it: every minted session is written down 0600 before use and crossed
out after its DELETE; the sessions of owners that are gone (pid dead, or reused by another process) are claimed by
one run and deleted, those of live owners never."""

import asyncio
import errno
import json
import os
import subprocess
import sys

import pytest

from azext_bastion_native.dataplane import journal as journal_module
from azext_bastion_native.dataplane.client import DataPlaneClient
from azext_bastion_native.dataplane.journal import Owner, SessionJournal
from azext_bastion_native.dataplane.protocol import Endpoint, Session, Target
from azext_bastion_native.dataplane.settings import ConnectionSettings
from tests.unit.dataplane.test_client import VM_ID, FakeHttp, FakeResponse, _minted


def _open(directory):
    return os.open(directory, os.O_RDONLY | os.O_DIRECTORY)


def _dead_owner():
    """The Owner of a process that has exited (and been reaped)."""
    with subprocess.Popen([sys.executable, '-c', 'import os; print(os.getpid())'], stdout=subprocess.PIPE,
                          text=True) as child:
        pid = int(child.stdout.read())
    return Owner(pid, '12345')


def _session(number, host='other-host:443'):
    return Session(endpoint_host=host, developer=False, node_id=f'node-{number}', auth_token=f'orphan-{number}',
                   websocket_token='ws')


def _entries(directory):
    return sorted(name for name in os.listdir(directory) if name.startswith('session-'))


def test_an_entry_is_0600_says_what_a_delete_needs_and_goes_when_forgotten(tmp_path):
    journal = SessionJournal(_open(tmp_path))
    journal.record(_session(1))
    [name] = _entries(tmp_path)
    assert name.startswith(f'session-{os.getpid()}-') and os.stat(tmp_path / name).st_mode & 0o777 == 0o600
    entry = json.loads((tmp_path / name).read_text())
    assert entry['authToken'] == 'orphan-1' and entry['nodeId'] == 'node-1' and entry['endpointHost'] == \
        'other-host:443' and 'ws' not in entry.values()
    journal.forget(_session(1))
    assert _entries(tmp_path) == []
    journal.close()


def test_only_entries_of_owners_that_are_gone_are_claimed(tmp_path):
    dead = SessionJournal(_open(tmp_path), owner=_dead_owner())
    dead.record(_session(1))
    reused = SessionJournal(_open(tmp_path), owner=Owner(os.getppid(), '1'))
    reused.record(_session(2))
    live = SessionJournal(_open(tmp_path), owner=Owner.current())
    live.record(_session(3))
    parent = SessionJournal(_open(tmp_path), owner=Owner(os.getppid(), journal_module.process_start(os.getppid())))
    parent.record(_session(4))
    (tmp_path / f'session-{dead.owner.pid}-2-3.json').write_text('garbled')
    (tmp_path / 'unrelated.json').write_text('{}')

    claimer = SessionJournal(_open(tmp_path))
    claimed = claimer.claim_orphans()
    assert sorted(session.auth_token for session in claimed) == ['orphan-1', 'orphan-2']
    assert parent.claim_orphans() == []         # claimed (renamed to the claimer's entries): no one else's now
    names = _entries(tmp_path)
    current = Owner.current()
    assert len(names) == 4 and sum(name.startswith(f'session-{current.pid}-{current.started}-') for name in names) == 3
    for session in claimed:
        claimer.forget(session)
    assert sorted(json.loads((tmp_path / name).read_text())['authToken'] for name in _entries(tmp_path)) == \
        ['orphan-3', 'orphan-4']
    assert (tmp_path / 'unrelated.json').exists()


def test_entries_older_than_bastion_could_keep_them_are_dropped_without_a_delete(tmp_path, monkeypatch):
    SessionJournal(_open(tmp_path), owner=_dead_owner()).record(_session(1))
    monkeypatch.setattr(journal_module, 'MAX_AGE', -1.0)
    assert SessionJournal(_open(tmp_path)).claim_orphans() == []
    assert _entries(tmp_path) == []


def _client(tmp_path, script, owner=None):
    settings = ConnectionSettings(verify=True, ca_bundle=None, environ={})
    http = FakeHttp(script)
    return DataPlaneClient(Endpoint('bst:443'), lambda: 'arm', settings=settings, http_session=http, prewarm=False,
                           journal=SessionJournal(_open(tmp_path), owner=owner)), http


def test_the_client_journals_each_session_until_its_delete_and_deletes_orphans_at_its_first_mint(tmp_path):
    SessionJournal(_open(tmp_path), owner=_dead_owner()).record(_session(7))

    async def scenario():
        minted = _minted(1)
        client, http = _client(tmp_path, [lambda method, _url: minted if method == 'POST' else FakeResponse(204)] * 3)
        session = await client.mint(Target(VM_ID, 22))
        await asyncio.sleep(0.1)
        entries = [json.loads((tmp_path / name).read_text())['authToken'] for name in _entries(tmp_path)]
        assert entries == ['auth-1']            # the orphan deleted, ours written down
        assert ('DELETE', 'https://other-host:443/api/tokens/orphan-7') in [call[:2] for call in http.calls]
        orphan_delete = next(call for call in http.calls if call[1].endswith('orphan-7'))
        assert orphan_delete[2]['X-Node-Id'] == 'node-7'
        assert await client.delete(session)
        assert _entries(tmp_path) == []
        await client.aclose()
    asyncio.run(scenario())


def test_a_client_that_never_mints_deletes_orphans_on_close_and_a_failed_delete_stays_journaled(tmp_path):
    SessionJournal(_open(tmp_path), owner=_dead_owner()).record(_session(8))
    SessionJournal(_open(tmp_path), owner=_dead_owner()).record(_session(9))

    async def scenario():
        answers = {'orphan-8': FakeResponse(204), 'orphan-9': FakeResponse(500)}
        client, http = _client(tmp_path, [lambda _method, url: answers[url.rsplit('/', 1)[1]]] * 2,
                               owner=_dead_owner())
        await client.aclose()
        assert sorted(call[1].rsplit('/', 1)[1] for call in http.calls) == ['orphan-8', 'orphan-9']
    asyncio.run(scenario())
    [left] = _entries(tmp_path)
    assert json.loads((tmp_path / left).read_text())['authToken'] == 'orphan-9'    # the next run tries again
    assert [session.auth_token for session in SessionJournal(_open(tmp_path)).claim_orphans()] == ['orphan-9']


@pytest.mark.parametrize('stat_text, expected', [(b'1 (a) b c) Z 1 2 3', ''), (b'1 (x) S ' + b' '.join(
    str(number).encode() for number in range(4, 30)), '22')])
def test_process_start_reads_field_22_and_a_zombie_has_none(monkeypatch, tmp_path, stat_text, expected):
    stat_file = tmp_path / 'stat'
    stat_file.write_bytes(stat_text)
    real_open = open
    monkeypatch.setattr('builtins.open', lambda path, *args, **kwargs: real_open(
        stat_file if str(path).startswith('/proc/4242/') else path, *args, **kwargs))
    assert journal_module.process_start(4242) == expected


def test_an_owner_whose_process_cannot_be_read_now_is_not_taken_for_gone(monkeypatch, tmp_path):
    parent = Owner(os.getppid(), journal_module.process_start(os.getppid()))
    SessionJournal(_open(tmp_path), owner=parent).record(_session(1))
    real_open = open

    def out_of_descriptors(path, *args, **kwargs):
        if str(path).startswith('/proc/'):
            raise OSError(errno.EMFILE, 'Too many open files')
        return real_open(path, *args, **kwargs)
    monkeypatch.setattr('builtins.open', out_of_descriptors)
    assert journal_module.process_start(os.getppid()) is None
    assert parent.alive()
    assert SessionJournal(_open(tmp_path)).claim_orphans() == []       # the live parent's session stays its own
    assert len(_entries(tmp_path)) == 1
