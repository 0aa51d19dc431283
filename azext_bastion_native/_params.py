# --------------------------------------------------------------------------------------------
# Arguments. Shared argument types live at the top; each area has its own block below.
# --------------------------------------------------------------------------------------------
# pylint: disable=line-too-long

from knack.arguments import CLIArgumentType

from azext_bastion_native._validators import validate_ports

ports_type = CLIArgumentType(
    nargs='+', validator=validate_ports,
    help='Target VM ports native client may reach: space-separated ports (1-65535) or ranges such as 8000-8010. '
         'Default: 22 3389.')


def load_arguments(self, _):

    # -- configure (issue 4) -------------------------------------------------------------------

    # -- secure: nsg (issue 5) -----------------------------------------------------------------
    with self.argument_context('network bastion nsg') as c:
        c.argument('ports', ports_type)

    # -- connect: tunnel and proxy (issue 6) ---------------------------------------------------

    # -- connect: ssh and rdp (issue 7) --------------------------------------------------------
