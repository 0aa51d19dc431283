# --------------------------------------------------------------------------------------------
# One function per command: turn arguments into calls to the layers below. Keep it thin.
# --------------------------------------------------------------------------------------------


# -- configure (issue 4) -----------------------------------------------------------------------


# -- secure: nsg (issue 5) ---------------------------------------------------------------------
def nsg_show(ports=None):
    from azext_bastion_native.nsg_rules import bastion_rule_set, rule_as_row
    return [rule_as_row(rule) for rule in bastion_rule_set(ports)]


# -- connect: tunnel and proxy (issue 6) -------------------------------------------------------


# -- connect: ssh and rdp (issue 7) ------------------------------------------------------------
