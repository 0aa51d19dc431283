# --------------------------------------------------------------------------------------------
# Waiting on long-running ARM operations with azure-cli's progress indicator, errors translated.
# --------------------------------------------------------------------------------------------
from azext_bastion_native.management.errors import arm_errors


def wait_for(cli_ctx, poller, what, start_msg=None):
    """Show progress while `poller` runs and return its result; None passes through (--no-wait)."""
    if poller is None:
        return None
    from azure.cli.core.commands import LongRunningOperation
    with arm_errors(what):
        return LongRunningOperation(cli_ctx, start_msg=start_msg or f'Waiting for {what}')(poller)
