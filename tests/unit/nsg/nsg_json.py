"""NSGs and security rules in ARM JSON for the nsg tests, and lookups in a check's report."""
from azext_bastion_native.nsg.rule_set import bastion_rule_set, rule_to_arm


def arm_rule(name, direction, priority, source, destination, ports, access='Allow', protocol='*'):
    props = {'priority': priority, 'direction': direction, 'access': access, 'protocol': protocol,
             'sourcePortRange': '*'}
    props.update({'sourceAddressPrefixes': source} if isinstance(source, list) else {'sourceAddressPrefix': source})
    props.update({'destinationAddressPrefix': destination})
    props.update({'destinationPortRanges': ports} if isinstance(ports, list) else {'destinationPortRange': ports})
    return {'name': name, 'properties': props}


def nsg_of(*rules, name='user-nsg'):
    return {'id': f'/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/{name}',
            'name': name, 'properties': {'securityRules': list(rules)}}


def compliant(ports=None, without=(), replace=None):
    """The rule set as ARM JSON, minus some rules, with some replaced."""
    rules = []
    for rule in bastion_rule_set(ports):
        if rule.name in without:
            continue
        rules.append((replace or {}).get(rule.name) or rule_to_arm(rule))
    return nsg_of(*rules)


def kinds(report):
    return {f.rule: f.kind for f in report.findings if f.rule}


def finding(report, rule):
    return next(f for f in report.findings if f.rule == rule)
