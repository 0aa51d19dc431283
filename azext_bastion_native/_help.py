# --------------------------------------------------------------------------------------------
# Help, in azure-cli's YAML. Every command and group has a summary and at least one example.
# --------------------------------------------------------------------------------------------
# pylint: disable=line-too-long, too-many-lines

from knack.help_files import helps  # pylint: disable=unused-import

helps['network bastion'] = """
type: group
short-summary: Azure Bastion with your own native client - configure it, secure it, connect through it.
long-summary: >
    From the bastion-native extension. Native client support needs a Standard (or Premium) Bastion host
    with tunneling enabled. Connecting from Cloud Shell is not supported, and SSH keys stored in Azure Key
    Vault must be downloaded to a local file first.
"""

# -- configure (issue 4) -----------------------------------------------------------------------

# -- secure: nsg (issue 5) ---------------------------------------------------------------------
helps['network bastion nsg'] = """
type: group
short-summary: Lock AzureBastionSubnet down to the ports native client uses, with the rules Bastion itself needs.
"""

helps['network bastion nsg show'] = """
type: command
short-summary: Show the NSG rule set this extension applies to AzureBastionSubnet.
long-summary: >
    The whole set Azure requires for AzureBastionSubnet (without any one of these rules Bastion stops
    working), with the outbound rule to VirtualNetwork limited to the target ports, and an explicit Deny for
    every other port to the virtual network. No Azure call is made.
examples:
  - name: The default rule set (SSH 22 and RDP 3389).
    text: az network bastion nsg show -o table
  - name: Allow only SSH on 22 and a custom port range.
    text: az network bastion nsg show --ports 22 8000-8010 -o table
"""

# -- connect: tunnel and proxy (issue 6) -------------------------------------------------------

# -- connect: ssh and rdp (issue 7) ------------------------------------------------------------
