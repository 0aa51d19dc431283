# --------------------------------------------------------------------------------------------
# Command table. Each area has its own block; keep heavy imports out of this module.
# --------------------------------------------------------------------------------------------
# pylint: disable=line-too-long

from azext_bastion_native._format import nsg_rules_table


def load_command_table(self, _):

    # -- configure: hosts, native-client, sessions (issue 4) -----------------------------------

    # -- secure: NSG rules for AzureBastionSubnet (issue 5) ------------------------------------
    with self.command_group('network bastion nsg', is_preview=True) as g:
        g.custom_command('show', 'nsg_show', table_transformer=nsg_rules_table)

    # -- connect: tunnel and proxy (issue 6) ---------------------------------------------------

    # -- connect: ssh and rdp (issue 7) --------------------------------------------------------
