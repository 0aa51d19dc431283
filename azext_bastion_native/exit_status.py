""""Here is the report, and it is not good": print the result as usual, then exit non-zero."""

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
