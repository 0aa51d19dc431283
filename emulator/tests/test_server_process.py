"""The emulator as a process: start-up contract (ready.json), key reuse across restarts, clean SIGTERM."""
import json
import time

import requests

from bastion_emulator.testing.sandbox import EmulatorProcess

READY_KEYS = {"arm", "ca_bundle", "tenant", "client_id", "client_secret", "subscription", "user_ca_pub"}


def test_ready_file_restart_reuses_keys_and_sigterm_stops_cleanly(tmp_path):
    first = EmulatorProcess(tmp_path / "state")
    started = time.monotonic()
    first.start()
    assert time.monotonic() - started < 5  # the brief's budget is 2 s of the emulator's own; allow for a busy CI
    ready = json.loads((tmp_path / "state" / "ready.json").read_text())
    assert READY_KEYS <= set(ready)
    assert ready["arm"].startswith("https://127.0.0.1:") and ready["arm"].endswith("/")
    assert open(ready["user_ca_pub"], encoding="utf-8").read().startswith("ssh-ed25519 ")
    answer = requests.get(ready["arm"] + "metadata/endpoints", params={"api-version": "2022-09-01"},
                          verify=ready["ca_bundle"], timeout=10)
    assert answer.status_code == 200
    ca_before = open(ready["ca_bundle"], encoding="utf-8").read()
    assert first.stop() == 0
    assert not (tmp_path / "state" / "ready.json").exists()

    second = EmulatorProcess(tmp_path / "state").start()
    try:
        assert open(second.ca_bundle, encoding="utf-8").read() == ca_before
        assert second.ready["client_secret"] == ready["client_secret"]
    finally:
        assert second.stop() == 0
