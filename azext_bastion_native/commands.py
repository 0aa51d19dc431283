"""Command table. Each area has its own block; keep heavy imports out of this module."""

# pylint: disable=line-too-long

from azext_bastion_native._format import (
    bastion_host_table_row, bastion_hosts_table, native_client_table, sessions_table, nsg_rules_table,
    nsg_check_table, nsg_apply_table)
from azext_bastion_native.management.operations import fail_on_wait_timeout, no_output_for_deletes


# As Microsoft's `bastion` extension registers delete (`confirmation=` in src/bastion/azext_bastion/aaz/latest/
# network/bastion/_delete.py): at a terminal azure-cli asks; without one and without --yes knack refuses ("Unable to
# prompt for confirmation as no tty available. Use --yes.", then "Operation cancelled.", exit 1: knack/commands.py
# `_user_confirmed`, azure-cli-core commands/__init__.py `resolve_confirmation`), so a script that forgot --yes
# deletes nothing.
DELETE_CONFIRMATION = 'Are you sure you want to delete the Bastion host?'


def load_command_table(self, _):
    from azure.cli.core.commands import CliCommandType
    from azext_bastion_native.cli_errors import translate
    custom_type = CliCommandType(operations_tmpl='azext_bastion_native.custom#{}', exception_handler=translate)

    # -- configure: hosts, native-client, sessions -------------------------------------------------
    with self.command_group('network bastion') as g:
        g.custom_command('create', 'bastion_create', supports_no_wait=True, table_transformer=bastion_host_table_row)
        g.generic_update_command('update', getter_name='bastion_show', getter_type=custom_type,
                                 setter_name='bastion_update_setter', setter_type=custom_type,
                                 setter_arg_name='parameters', custom_func_name='bastion_update',
                                 supports_no_wait=True, table_transformer=bastion_host_table_row)
        g.custom_show_command('show', 'bastion_show', table_transformer=bastion_host_table_row)
        g.custom_command('list', 'bastion_list', table_transformer=bastion_hosts_table)
        g.custom_command('delete', 'bastion_delete', supports_no_wait=True, confirmation=DELETE_CONFIRMATION)
        g.custom_wait_command('wait', 'bastion_wait_getter', transform=fail_on_wait_timeout)
    from knack.events import EVENT_INVOKER_FILTER_RESULT
    self.cli_ctx.register_event(EVENT_INVOKER_FILTER_RESULT, no_output_for_deletes)

    with self.command_group('network bastion native-client') as g:
        g.custom_show_command('show', 'native_client_show', table_transformer=native_client_table)
        g.custom_command('enable', 'native_client_enable', supports_no_wait=True,
                         table_transformer=bastion_host_table_row)
        g.custom_command('disable', 'native_client_disable', supports_no_wait=True,
                         table_transformer=bastion_host_table_row)

    with self.command_group('network bastion session') as g:
        g.custom_command('list', 'session_list', table_transformer=sessions_table)
        g.custom_command('disconnect', 'session_disconnect')

    # -- secure: NSG rules for AzureBastionSubnet --------------------------------------------------
    with self.command_group('network bastion nsg') as g:
        g.custom_command('show', 'nsg_show', table_transformer=nsg_rules_table)
        g.custom_command('check', 'nsg_check', table_transformer=nsg_check_table)
        g.custom_command('apply', 'nsg_apply', supports_no_wait=True, table_transformer=nsg_apply_table)

    # -- connect: tunnel and proxy -----------------------------------------------------------------
    with self.command_group('network bastion') as g:
        g.custom_command('tunnel', 'bastion_tunnel')
        g.custom_command('proxy', 'bastion_proxy')
        g.custom_command('forward', 'bastion_forward')

    # -- connect: ssh and rdp ----------------------------------------------------------------------
    with self.command_group('network bastion') as g:
        g.custom_command('ssh', 'bastion_ssh')
        g.custom_command('rdp', 'bastion_rdp')

    # -- extras: doctor ----------------------------------------------------------------------------
    with self.command_group('network bastion') as g:
        g.custom_command('doctor', 'bastion_doctor',
                         table_transformer='[].{Check:check, Status:status, Detail:detail, Fix:fix}')

    # -- extras: ssh-config and file transfer ------------------------------------------------------
    with self.command_group('network bastion') as g:
        g.custom_command('ssh-config', 'bastion_ssh_config')

    with self.command_group('network bastion agent') as g:
        g.custom_command('start', 'agent_start')
        g.custom_command('stop', 'agent_stop')
        g.custom_command('status', 'agent_status')

    with self.command_group('network bastion file') as g:
        g.custom_command('upload', 'bastion_file_upload')
        g.custom_command('download', 'bastion_file_download')
