"""ARM writes the user sees through: asking before one, and waiting on it with azure-cli's progress indicator."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, TypeVar, overload

from azext_bastion_native.errors import Kind, Refused
from azext_bastion_native.management.errors import arm_errors

if TYPE_CHECKING:
    from azure.cli.core import AzCli
    from azure.core.polling import LROPoller

Result = TypeVar('Result')


def confirm(question: str, yes: bool, cancelled: str, no_terminal: str, recommendation: str) -> None:
    """Ask ``question`` (y/N) unless ``yes``; a "no" is refused as interrupted (``cancelled``). With no terminal to
    ask on, refused as usage (``no_terminal``, ``recommendation``): a script must say --yes."""
    if yes:
        return
    from knack.prompting import NoTTYException, prompt_y_n
    try:
        if not prompt_y_n(question, default='n'):
            raise Refused(cancelled, kind=Kind.INTERRUPTED)
    except NoTTYException:
        raise Refused(no_terminal, recommendation=recommendation, kind=Kind.USAGE) from None


@overload
def wait_for(cli_ctx: AzCli, poller: LROPoller[Result], what: str, start_msg: Optional[str] = None) -> Result:
    ...


@overload
def wait_for(cli_ctx: AzCli, poller: None, what: str, start_msg: Optional[str] = None) -> None:
    ...


def wait_for(cli_ctx: AzCli, poller: Optional[LROPoller[Result]], what: str,
             start_msg: Optional[str] = None) -> Optional[Result]:
    """Show progress while `poller` runs and return its result; None passes through (--no-wait)."""
    if poller is None:
        return None
    from azure.cli.core.commands import LongRunningOperation
    with arm_errors(what):
        result: Result = LongRunningOperation(cli_ctx, start_msg=start_msg or f'Waiting for {what}')(poller)
        return result


def fail_on_wait_timeout(result: Any) -> Any:
    """`wait`'s result transform. azure-cli's generic wait returns, not raises, the error when --timeout passes
    (azure-cli-core commands/command_operation.py, WaitCommandOperation.wait: ``return CLIError('Wait operation
    timed-out after N seconds')``), which az prints as {} with exit status 0; a script could not tell. Refuse it."""
    from knack.util import CLIError
    if isinstance(result, CLIError):
        raise Refused(f'{result}: the Bastion host did not reach the condition waited for (--created, --updated, '
                      '--deleted, --exists or --custom).',
                      recommendation='See where it stands with az network bastion show, or wait longer with '
                                     '--timeout SECONDS.', kind=Kind.VALIDATION)
    return result


def no_output_for_deletes(cli_ctx: AzCli, **kwargs: Any) -> None:
    """EVENT_INVOKER_FILTER_RESULT handler: `delete --ids A B` prints nothing, as one delete does (azure-cli would
    print the list of its per-id results, [null, null])."""
    event_data = kwargs.get('event_data') or {}
    result = event_data.get('result')
    command = (getattr(getattr(cli_ctx, 'invocation', None), 'data', None) or {}).get('command_string', '')
    if command == 'network bastion delete' and isinstance(result, list) and all(item is None for item in result):
        event_data['result'] = None
