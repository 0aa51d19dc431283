"""exit_status.py: "the report, then exit 3" after azure-cli's output, and a native client's exit code (or a signal's)
as the command's."""
import logging
import os
import signal

import pytest
from knack.events import EVENT_CLI_SUCCESSFUL_EXECUTE

from azext_bastion_native import exit_status
from azext_bastion_native.connect import engine_logs
from tests.unit.cli_context import RecordingCli


def test_the_findings_exit_comes_after_the_output_with_its_message(caplog):
    cli = RecordingCli()
    exit_status.exit_after_output(cli, '2 finding(s) need a fix.')
    [(event, handler)] = cli.events
    assert event == EVENT_CLI_SUCCESSFUL_EXECUTE
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as exited:
        handler(cli)
    assert exited.value.code == exit_status.FINDINGS_EXIT_CODE == 3
    assert caplog.messages == ['2 finding(s) need a fix.']
    exit_status.exit_after_output(cli, 'other', code=4)
    with pytest.raises(SystemExit) as exited:
        cli.handlers[1](cli)
    assert exited.value.code == 4


@pytest.fixture(autouse=True)
def engine_logs_left_alone(monkeypatch):
    """exit_with routes the engine's logs under az's logger: not in a test process."""
    monkeypatch.setattr(engine_logs, 'route_engine_logs', lambda: None)


def test_a_clean_exit_returns_and_a_failing_one_becomes_the_commands_exit_code():
    assert exit_status.exit_with(lambda: 0) is None
    with pytest.raises(SystemExit) as exited:
        exit_status.exit_with(lambda: 255)
    assert exited.value.code == 255


@pytest.mark.skipif(not hasattr(signal, 'SIGHUP'), reason='POSIX signals')
@pytest.mark.parametrize('signum, code', [(signal.SIGTERM, 143), (getattr(signal, 'SIGHUP', 1), 129)])
def test_sigterm_or_sighup_unwinds_the_session_and_exits_128_plus_the_signal(signum, code):
    unwound = []
    before = signal.getsignal(signum)

    def session():
        try:
            os.kill(os.getpid(), signum)        # Python runs the handler before the next line
            return 0
        finally:
            unwound.append(True)
    with pytest.raises(SystemExit) as exited:
        exit_status.exit_with(session)
    assert exited.value.code == code and unwound == [True]
    assert signal.getsignal(signum) is before          # the default handling is back
