"""bastion-native: Azure Bastion native client commands for the Azure CLI."""

# Start-up matters: nothing heavy (websockets, asyncio, requests, azure.mgmt.network) is imported here or in
# commands.py / _params.py / _help.py; command functions import what they need when they run.

from azure.cli.core import AzCommandsLoader

from azext_bastion_native._help import helps  # noqa: F401  pylint: disable=unused-import


class BastionNativeCommandsLoader(AzCommandsLoader):

    def __init__(self, cli_ctx=None):
        from azure.cli.core.commands import CliCommandType
        from azext_bastion_native.cli_errors import translate
        from azext_bastion_native.results import command_result
        # exception_handler is a command setting (azure-cli-core commands/constants.py CLI_COMMAND_KWARGS): every
        # command made from this type leaves through the one translator. transform (same list) turns its result
        # into plain data, which every supported az prints alike (results.py). generic_update_command takes its
        # settings from command_type, so `update` is made from the same type.
        custom_command_type = CliCommandType(operations_tmpl='azext_bastion_native.management.hosts#{}',
                                             exception_handler=translate, transform=command_result)
        super().__init__(cli_ctx=cli_ctx, custom_command_type=custom_command_type, command_type=custom_command_type)
        # A command function's `environment` (the machine's parts, injected by unit tests) is not an az option.
        self.excluded_command_handler_args = [*self.excluded_command_handler_args, 'environment']

    def load_command_table(self, args):
        from azext_bastion_native.commands import load_command_table
        from azext_bastion_native.side_by_side import warn_if_installed
        warn_if_installed()
        load_command_table(self, args)
        return self.command_table

    def load_arguments(self, command):
        from azext_bastion_native._params import load_arguments
        load_arguments(self, command)


COMMAND_LOADER_CLS = BastionNativeCommandsLoader
