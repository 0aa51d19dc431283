"""-o table transformers. Column order is what a user scans first."""

from collections import OrderedDict

from azext_bastion_native.bastion_facts import resource_group_of


def _several(result, transform, label=None):
    """With several --ids, azure-cli's result is a list of the single results (in no set order): their rows one
    after the other, each first named by its ``label`` key (last path segment), e.g. the NSG."""
    rows = []
    for one in result:
        for row in transform(one):
            if label:
                row = OrderedDict([(label.capitalize(), (one.get(label) or '-').rsplit('/', 1)[-1]), *row.items()])
            rows.append(row)
    return rows


def bastion_host_table_row(result):
    if isinstance(result, list):        # several --ids
        return [bastion_host_table_row(host) for host in result]
    if not result:
        return result
    props = result.get('properties', result)
    return OrderedDict([
        ('Name', result.get('name')),
        ('ResourceGroup', resource_group_of(result.get('id')) or ''),
        ('Location', result.get('location')),
        ('Sku', (result.get('sku') or {}).get('name')),
        ('NativeClient', _on_off(props.get('enableTunneling'))),
        ('IpConnect', _on_off(props.get('enableIpConnect'))),
        ('ProvisioningState', props.get('provisioningState')),
    ])


def bastion_hosts_table(result):
    return [bastion_host_table_row(host) for host in result]


def native_client_table(result):
    if isinstance(result, list):        # several --ids
        return _several(result, native_client_table)
    rows = [OrderedDict([
        ('Host', result['name']), ('Sku', result['sku']), ('NativeClient', result['nativeClient']),
        ('IpConnect', _on_off(result['enableIpConnect'])), ('FileCopy', _on_off(result['enableFileCopy'])),
        ('ClientOs', result['clientOs']), ('Target', ''), ('Method', ''), ('EntraAuth', ''), ('FileTransfer', ''),
        ('ConcurrentSessions', ''), ('CustomPort', '')])]
    for method in result.get('methods', []):
        rows.append(OrderedDict([
            ('Host', ''), ('Sku', ''), ('NativeClient', ''), ('IpConnect', ''), ('FileCopy', ''), ('ClientOs', ''),
            ('Target', method['targetOs']), ('Method', method['method']),
            ('EntraAuth', _yes_no(method['entraAuth'])), ('FileTransfer', _yes_no(method['fileTransfer'])),
            ('ConcurrentSessions', _yes_no(method['concurrentSessions'])),
            ('CustomPort', _yes_no(method['customPort']))]))
    return rows


def _yes_no(value):
    return 'yes' if value else 'no'


def _on_off(value):
    return 'on' if value else 'off'


def sessions_table(result):
    if result and all(isinstance(one, list) for one in result):     # several --ids: a list per host
        return sessions_table([session for one in result for session in one])
    return [OrderedDict([
        ('SessionId', s.get('sessionId')), ('User', s.get('userName')), ('Protocol', s.get('protocol')),
        ('Target', s.get('targetHostName') or s.get('targetIpAddress')), ('Started', s.get('startTime')),
        ('Minutes', s.get('sessionDurationInMins'))]) for s in result]


def nsg_rules_table(result):
    return [OrderedDict([
        ('Name', row['name']),
        ('Direction', row['direction']),
        ('Priority', row['priority']),
        ('Access', row['access']),
        ('Source', row['source']),
        ('Destination', row['destination']),
        ('Ports', row['ports']),
        ('Protocol', row['protocol']),
    ]) for row in result]


# -- secure: nsg -----------------------------------------------------------------------------------
def nsg_check_table(result):
    if isinstance(result, list):        # several --ids
        return _several(result, nsg_check_table, label='host')
    return [OrderedDict([
        ('Rule', finding['rule'] or '-'),
        ('Finding', finding['kind']),
        ('Detail', finding['detail']),
    ]) for finding in result['findings']]


def nsg_apply_table(result):
    if isinstance(result, list):        # several --ids
        return _several(result, nsg_apply_table, label='nsg')
    changes = result.get('changes') or ['no change']
    rows = [OrderedDict([('Change', line)]) for line in changes]
    rows += [OrderedDict([('Change', f'not changed: {item}')]) for item in result.get('unresolved') or []]
    return rows
