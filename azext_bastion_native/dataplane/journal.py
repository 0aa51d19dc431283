"""The session journal: each minted Bastion session is written down (a 0600 file in the user's private directory)
before it is used and crossed out once its DELETE succeeded, so that the sessions of a run killed outright (kill -9,
a crash, power loss) are deleted by the next run instead of staying open on the host until its idle policy. An
entry's name says which process owns it (pid and start time); entries of owners that are gone are claimed by
renaming them to the claimer's name (atomic: one run wins), then deleted."""

import itertools
import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Dict, List, Optional

from .protocol import Session

logger = logging.getLogger(__name__)

ENTRY_PREFIX = 'session-'
ENTRY_SUFFIX = '.json'
MAX_AGE = 24 * 3600.0       # seconds: older entries are dropped without a DELETE (Bastion ended those long ago)
MAX_ENTRY = 16 * 1024       # bytes an entry may have, at most
_OPEN_FLAGS = getattr(os, 'O_NOFOLLOW', 0) | getattr(os, 'O_CLOEXEC', 0)    # POSIX (imported on Windows too)
# Entry numbers, one sequence per process: every journal of the process (one per data-plane client) names its
# entries apart, so a claim (a rename, which replaces its target) never lands on another's entry.
_entry_numbers = itertools.count()


@dataclass(frozen=True)
class Owner:
    """A process as an entry names it: its pid and its start time (empty where the system does not say)."""
    pid: int
    started: str

    @classmethod
    def current(cls) -> 'Owner':
        return cls(os.getpid(), process_start(os.getpid()) or '')

    def alive(self) -> bool:
        """Whether this very process still runs: a pid given to another process since counts as gone."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass                    # another user's process now has the pid: the start time tells
        started = process_start(self.pid)
        return started is None or not self.started or started == self.started

    def entry_name(self, number: int) -> str:
        return f'{ENTRY_PREFIX}{self.pid}-{self.started}-{number}{ENTRY_SUFFIX}'


def process_start(pid: int) -> Optional[str]:
    """The start time of ``pid`` (ticks since boot, /proc/PID/stat field 22); '' for a zombie or a process that
    has gone (gone for our purpose); None where /proc does not say (not Linux, or not readable now)."""
    try:
        with open(f'/proc/{pid}/stat', 'rb') as handle:
            fields = handle.read().rsplit(b')', 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None if not os.path.isdir('/proc/self') else ''
    except (OSError, IndexError):
        # Out of descriptors (EMFILE) or the like: that says nothing of the process, and a live one taken for gone
        # would have its sessions deleted under it.
        return None
    if not fields or fields[0] == b'Z':
        return ''
    return fields[19].decode('ascii', 'replace') if len(fields) > 19 else None


def owner_of(name: str) -> Optional[Owner]:
    """The owner an entry's file name states, or None when it is not an entry's name."""
    if not name.startswith(ENTRY_PREFIX) or not name.endswith(ENTRY_SUFFIX):
        return None
    parts = name[len(ENTRY_PREFIX):-len(ENTRY_SUFFIX)].split('-')
    if len(parts) != 3 or not parts[0].isdigit() or not parts[2].isdigit():
        return None
    return Owner(int(parts[0]), parts[1])


class SessionJournal:
    """The entries of one process in a private directory, given as an open descriptor (it takes it over:
    ``close()``). ``record`` and ``forget`` are one small file each; ``claim_orphans`` reads the directory."""

    def __init__(self, directory: int, owner: Optional[Owner] = None):
        self._directory = directory
        self.owner = owner or Owner.current()
        self._entries: Dict[str, str] = {}          # auth token -> entry file name

    def record(self, session: Session) -> None:
        """Write ``session`` down (before it is used): what its DELETE needs, and when it was minted."""
        name = self.owner.entry_name(next(_entry_numbers))
        body = json.dumps({'endpointHost': session.endpoint_host, 'developer': session.developer,
                           'nodeId': session.node_id, 'authToken': session.auth_token,
                           'minted': time.time()}).encode('utf-8')
        descriptor = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS, 0o600,
                             dir_fd=self._directory)
        try:
            os.write(descriptor, body)
        finally:
            os.close(descriptor)
        self._entries[session.auth_token] = name

    def forget(self, session: Session) -> None:
        """Cross ``session`` out (its DELETE succeeded, or Bastion no longer knows it)."""
        name = self._entries.pop(session.auth_token, None)
        if name is not None:
            try:
                os.unlink(name, dir_fd=self._directory)
            except FileNotFoundError:
                pass

    def claim_orphans(self) -> List[Session]:
        """The sessions of entries whose owner is gone, each claimed (renamed to an entry of ours, so no other run
        deletes it too) and to be forgotten once deleted. Unreadable entries and ones older than MAX_AGE are
        removed."""
        claimed = []
        for name in sorted(os.listdir(self._directory)):
            owner = owner_of(name)
            if owner is None or owner == self.owner or owner.alive():
                continue
            ours = self.owner.entry_name(next(_entry_numbers))
            try:
                os.rename(name, ours, src_dir_fd=self._directory, dst_dir_fd=self._directory)
            except FileNotFoundError:
                continue            # another run claimed it first
            session = self._read(ours)
            if session is None:
                os.unlink(ours, dir_fd=self._directory)
                continue
            self._entries[session.auth_token] = ours
            claimed.append(session)
        return claimed

    def _read(self, name: str) -> Optional[Session]:
        try:
            descriptor = os.open(name, os.O_RDONLY | _OPEN_FLAGS, dir_fd=self._directory)
            try:
                data = json.loads(os.read(descriptor, MAX_ENTRY))
            finally:
                os.close(descriptor)
            if time.time() - float(data['minted']) > MAX_AGE:
                return None
            return Session(endpoint_host=str(data['endpointHost']), developer=bool(data['developer']),
                           node_id=str(data['nodeId']), auth_token=str(data['authToken']), websocket_token='')
        except (OSError, ValueError, KeyError, TypeError) as err:
            logger.debug('session journal entry %s dropped: %s', name, type(err).__name__)
            return None

    def close(self) -> None:
        os.close(self._directory)
