"""forward's pure parts: -L and -D specs, VM text -> Target with the SOCKS5 reply of every refusal, and the VM list's
re-read on a miss at most every REREAD_INTERVAL seconds."""

import ipaddress
from types import SimpleNamespace

import pytest

from azext_bastion_native.connect import forward
from azext_bastion_native.connect.forward import KnownVm, LocalForward, TargetRefused, TargetResolver
from azext_bastion_native.errors import Refused
from azext_bastion_native.relay.socks import Reply

SUB = '00000000-0000-0000-0000-000000000000'
VNET = f'/subscriptions/{SUB}/resourcegroups/net-rg/providers/microsoft.network/virtualnetworks/hub'
FAR = f'/subscriptions/{SUB}/resourcegroups/net-rg/providers/microsoft.network/virtualnetworks/far'


def vm_id(name, group):
    return f'/subscriptions/{SUB}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachines/{name}'


def host(**settings):
    values = dict(sku=SimpleNamespace(name='Standard'), enable_tunneling=True, enable_ip_connect=True,
                  dns_name='bst-1.bastion.azure.com',
                  id=f'/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/bastionHosts/b')
    values.update(settings)
    return SimpleNamespace(**values)


class Directory:
    """VmDirectory's two questions, from a dict: (name, group) -> VNet."""

    def __init__(self, vms):
        self.vms = {(name.lower(), group.lower()): KnownVm(name, group, vm_id(name, group), vnet)
                    for (name, group), vnet in vms.items()}
        self.asked = []

    def reach(self):
        return frozenset({VNET}), (ipaddress.ip_network('10.0.0.0/16'),)

    def find(self, name, group):
        self.asked.append((name, group))
        return self.vms.get((name.lower(), group.lower()))


VMS = {('web-1', 'apps'): VNET, ('db.1', 'apps'): VNET, ('db', 'data.rg'): VNET, ('far-1', 'apps'): FAR,
       ('nic-less', 'apps'): None}


def resolver(**settings):
    return TargetResolver(Directory(VMS), host(**settings), 'rg', 'b', 'apps')


@pytest.mark.parametrize('spec,expected', [
    ('8080:web-1:80', LocalForward('8080:web-1:80', '127.0.0.1', 8080, 'web-1', 80)),
    ('0.0.0.0:0:db.1:5432', LocalForward('0.0.0.0:0:db.1:5432', '0.0.0.0', 0, 'db.1', 5432)),
    ('[::1]:2222:10.0.0.4:22', LocalForward('[::1]:2222:10.0.0.4:22', '::1', 2222, '10.0.0.4', 22)),
    ('*:3389:win-1:3389', LocalForward('*:3389:win-1:3389', '0.0.0.0', 3389, 'win-1', 3389)),
    (':3389:win-1:3389', LocalForward(':3389:win-1:3389', '0.0.0.0', 3389, 'win-1', 3389)),
    (f'0:{vm_id("web-1", "apps")}:22',
     LocalForward(f'0:{vm_id("web-1", "apps")}:22', '127.0.0.1', 0, vm_id('web-1', 'apps'), 22)),
])
def test_local_forward_specs(spec, expected):
    assert forward.parse_local_forward(spec) == expected


@pytest.mark.parametrize('spec,said', [('8080:web-1', 'is not [BIND:]PORT:VM:VMPORT'), ('a:b:c:d:e', 'is not'),
                                       ('8080::80', 'is not'), ('x:web-1:80', "'x' is not a port"),
                                       ('70000:web-1:80', 'not a port (0-65535'),
                                       ('0:web-1:0', "'0' is not a port (1-65535)")])
def test_bad_local_forward_specs_are_refused_with_an_example(spec, said):
    with pytest.raises(Refused) as refused:
        forward.parse_local_forward(spec)
    assert said in refused.value.message and '-L 8080:web-1:80' in refused.value.recommendation


def test_socks_specs():
    assert forward.parse_socks('1080') == ('127.0.0.1', 1080)
    assert forward.parse_socks('0') == ('127.0.0.1', 0)
    assert forward.parse_socks('192.168.1.5:0') == ('192.168.1.5', 0)
    assert forward.parse_socks('[::1]:1080') == ('::1', 1080)
    for bad in ('a:b:c', 'x', '65536'):
        with pytest.raises(Refused):
            forward.parse_socks(bad)


def test_a_name_is_a_vm_of_the_vm_resource_group_then_name_dot_group():
    found = resolver().resolve('web-1', 8080)
    assert found.target.resource_id == vm_id('web-1', 'apps') and found.target.port == 8080
    assert resolver().resolve('db.data.rg', 5432).target.resource_id == vm_id('db', 'data.rg')
    assert resolver().resolve('DB.1', 5432).target.resource_id == vm_id('db.1', 'apps')  # a dotted name, whole
    assert resolver().resolve(vm_id('web-1', 'apps'), 22).vm.name == 'web-1'


def test_every_refusal_carries_its_socks5_reply():
    cases = [
        (('no-such-vm', 22), Reply.HOST_UNREACHABLE, "No VM named 'no-such-vm'"),
        (('far-1', 22), Reply.NETWORK_UNREACHABLE, 'not in the Bastion host\'s virtual network'),
        (('nic-less', 22), Reply.NETWORK_UNREACHABLE, 'not in the Bastion host\'s virtual network'),
        (('10.1.0.4', 22), Reply.NETWORK_UNREACHABLE, 'not in the address space'),
        (('10.0.0.4', 8080), Reply.NOT_ALLOWED, '22 and 3389'),
        (('/subscriptions/x/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/s', 22),
         Reply.HOST_UNREACHABLE, 'not a virtual machine resource ID'),
    ]
    for (vm_text, port), reply, said in cases:
        with pytest.raises(TargetRefused) as refused:
            resolver().resolve(vm_text, port)
        assert refused.value.reply is reply and said in refused.value.message, vm_text


def test_the_host_rules_refuse_ip_connect_where_it_is_off():
    assert resolver().resolve('10.0.0.4', 3389).target.hostname == '10.0.0.4'
    with pytest.raises(TargetRefused) as refused:
        resolver(enable_ip_connect=False).resolve('10.0.0.4', 22)
    assert refused.value.reply is Reply.NOT_ALLOWED and 'IP connect' in refused.value.message


def test_a_miss_reads_the_group_again_at_most_every_few_seconds(monkeypatch):
    now = [1000.0]
    reads = []
    monkeypatch.setattr(forward.time, 'monotonic', lambda: now[0])
    directory = forward.VmDirectory(None, host(), SUB)
    listed = {'web-1': KnownVm('web-1', 'apps', vm_id('web-1', 'apps'), VNET)}

    def read_group(group):
        reads.append(group)
        return dict(listed)
    monkeypatch.setattr(directory, '_read_group', read_group)
    assert directory.find('web-1', 'apps').name == 'web-1' and reads == ['apps']
    assert directory.find('WEB-1', 'APPS') is not None and reads == ['apps']        # a hit: no read
    assert directory.find('web-2', 'apps') is None and reads == ['apps']            # a miss, read just now
    listed['web-2'] = KnownVm('web-2', 'apps', vm_id('web-2', 'apps'), VNET)        # created meanwhile
    now[0] += forward.REREAD_INTERVAL
    assert directory.find('web-2', 'apps').name == 'web-2' and reads == ['apps', 'apps']


def test_socks_names_answer_from_memory_once_resolved_and_refusals_are_asked_again():
    import asyncio
    from azext_bastion_native.relay.socks import AddressType, ConnectRequest, SocksRefused
    asked = []
    counting = resolver()
    real = counting.resolve

    def resolve(vm_text, port):
        asked.append(vm_text)
        return real(vm_text, port)
    counting.resolve = resolve
    socks_resolve = forward.socks_resolver(counting)

    async def scenario():
        first = await socks_resolve(ConnectRequest('web-1', 22, AddressType.DOMAIN))
        again = await socks_resolve(ConnectRequest('WEB-1', 22, AddressType.DOMAIN))
        assert first == again and first.resource_id == vm_id('web-1', 'apps')
        for _ in range(2):
            with pytest.raises(SocksRefused) as refused:
                await socks_resolve(ConnectRequest('no-such-vm', 22, AddressType.DOMAIN))
            assert refused.value.reply is Reply.HOST_UNREACHABLE
    asyncio.run(scenario())
    assert asked == ['web-1', 'no-such-vm', 'no-such-vm']
