"""ARM writes the user sees through: asking before one, and waiting on it with azure-cli's progress indicator."""
from azext_bastion_native.management.errors import arm_errors


def confirm(question, yes, cancelled, no_terminal, recommendation):
    """Ask ``question`` (y/N) unless ``yes``; a "no" is ManualInterrupt(``cancelled``). With no terminal to ask on,
    ArgumentUsageError(``no_terminal``, ``recommendation``): a script must say --yes."""
    if yes:
        return
    from azure.cli.core import azclierror
    from knack.prompting import NoTTYException, prompt_y_n
    try:
        if not prompt_y_n(question, default='n'):
            raise azclierror.ManualInterrupt(cancelled)
    except NoTTYException:
        raise azclierror.ArgumentUsageError(no_terminal, recommendation=recommendation) from None


def wait_for(cli_ctx, poller, what, start_msg=None):
    """Show progress while `poller` runs and return its result; None passes through (--no-wait)."""
    if poller is None:
        return None
    from azure.cli.core.commands import LongRunningOperation
    with arm_errors(what):
        return LongRunningOperation(cli_ctx, start_msg=start_msg or f'Waiting for {what}')(poller)
