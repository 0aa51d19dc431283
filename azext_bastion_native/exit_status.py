"""A command's exit status beyond azure-cli's 0/1/2: a native client's own (ssh, scp, an RDP client), and "here is
the report, and it is not good" (print the result as usual, then exit non-zero)."""

from knack.log import get_logger

logger = get_logger(__name__)

# Distinct from azure-cli's 1 (error) and 2 (usage): the command worked, what it found needs a fix.
FINDINGS_EXIT_CODE = 3


def exit_after_output(cli_ctx, message, code=FINDINGS_EXIT_CODE):
    """azure-cli has no "result plus failure" return: a one-shot handler on the event raised after the output
    (-o json/table/--query as usual) is written logs `message` and ends the process with `code`."""
    from knack.events import EVENT_CLI_SUCCESSFUL_EXECUTE

    def _exit(_cli_ctx, **_):
        logger.error(message)
        raise SystemExit(code)

    cli_ctx.register_event(EVENT_CLI_SUCCESSFUL_EXECUTE, _exit)


def exit_with(run):
    """Run a native client session; its exit code becomes the command's (no output, no traceback).

    SIGTERM/SIGHUP unwind through every clean-up, like Ctrl+C, instead of leaving sessions and keys behind."""
    from azext_bastion_native.clients.launch import Terminated, termination_unwinds
    from azext_bastion_native.connect.engine_logs import route_engine_logs
    route_engine_logs()
    try:
        with termination_unwinds():
            code = run()
    except Terminated as stop:
        code = stop.exit_code
    if code:
        raise SystemExit(code)
