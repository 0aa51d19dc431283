"""The configure and secure commands whose functions are not yet their modules' own: hosts, native client, sessions,
NSG. (The connect commands, doctor, ssh-config, agent and file are their modules' functions: commands.py.)"""

from azext_bastion_native.management.clients import cf_network


# -- configure -------------------------------------------------------------------------------------
def bastion_create(cmd, resource_group_name, name, vnet_name, public_ip_address=None, location=None, sku='Standard',
                   enable_tunneling=None, enable_ip_connect=None, file_copy=None, disable_copy_paste=None,
                   enable_kerberos=None, shareable_link=None, session_recording=None, private_only=None,
                   scale_units=None, zones=None, tags=None, no_wait=False):
    from azext_bastion_native.management import hosts
    from azext_bastion_native.management.operations import wait_for
    hosts.check_host_name(name)
    client = cf_network(cmd.cli_ctx)
    features = hosts.features_from_flags(
        enable_tunneling=enable_tunneling, enable_ip_connect=enable_ip_connect, file_copy=file_copy,
        disable_copy_paste=disable_copy_paste, enable_kerberos=enable_kerberos,
        shareable_link=shareable_link, session_recording=session_recording, private_only=private_only)
    host = hosts.build_host(client, resource_group_name, vnet_name, public_ip_address, location, sku, features,
                            scale_units, zones, tags)
    poller = hosts.put_host(client, resource_group_name, name, host, no_wait=no_wait)
    return None if no_wait else wait_for(cmd.cli_ctx, poller, hosts.host_label(resource_group_name, name))


def bastion_update(cmd, instance, resource_group_name, name,  # pylint: disable=unused-argument
                   sku=None, enable_tunneling=None, enable_ip_connect=None, file_copy=None, disable_copy_paste=None,
                   enable_kerberos=None, shareable_link=None, session_recording=None, scale_units=None,
                   tags=None, network_acls=None):
    from azext_bastion_native.management import hosts
    features = hosts.features_from_flags(
        enable_tunneling=enable_tunneling, enable_ip_connect=enable_ip_connect, file_copy=file_copy,
        disable_copy_paste=disable_copy_paste, enable_kerberos=enable_kerberos,
        shareable_link=shareable_link, session_recording=session_recording)
    acls = hosts.network_acls_from_argument(network_acls) if network_acls is not None else None
    return hosts.apply_update(instance, hosts.host_label(resource_group_name, name), sku=sku, features=features,
                              scale_units=scale_units, tags=tags, network_acls=acls)


def bastion_update_setter(cmd, resource_group_name, name, parameters, no_wait=False):
    from azext_bastion_native.bastion_facts import sku_name
    from azext_bastion_native.management import hosts
    from azext_bastion_native.management.operations import wait_for
    client = cf_network(cmd.cli_ctx)
    label = hosts.host_label(resource_group_name, name)
    # --set/--add/--remove were applied after bastion_update's checks: check the host as it will be written
    hosts.check_final_host(label, sku_name(hosts.get_host(client, resource_group_name, name)), parameters)
    poller = hosts.put_host(client, resource_group_name, name, parameters, etag=parameters.etag, no_wait=no_wait)
    return None if no_wait else wait_for(cmd.cli_ctx, poller, hosts.host_label(resource_group_name, name))


def bastion_show(cmd, resource_group_name, name):
    from azext_bastion_native.management.hosts import get_host
    return get_host(cf_network(cmd.cli_ctx), resource_group_name, name)


def bastion_wait_getter(cmd, resource_group_name, name):
    # Plain data: azure-cli's generic wait reads provisioningState (and --custom's JMESPath) from its own todict
    # of what this returns, which on 2.67 sees nothing of an SDK model (results.py) and waits to the timeout.
    from azext_bastion_native.management.hosts import get_host
    from azext_bastion_native.results import plain
    return plain(get_host(cf_network(cmd.cli_ctx), resource_group_name, name, for_wait=True))


def bastion_list(cmd, resource_group_name=None):
    from azext_bastion_native.management.hosts import list_hosts
    return list_hosts(cf_network(cmd.cli_ctx), resource_group_name)


def bastion_delete(cmd, resource_group_name, name, no_wait=False):
    from azext_bastion_native.management.hosts import delete_host
    return delete_host(cmd.cli_ctx, cf_network(cmd.cli_ctx), resource_group_name, name, no_wait=no_wait)


def native_client_show(cmd, resource_group_name, name):
    from azext_bastion_native.management.hosts import get_host
    from azext_bastion_native.management.native_client import describe
    return describe(get_host(cf_network(cmd.cli_ctx), resource_group_name, name))


def native_client_enable(cmd, resource_group_name, name, upgrade_sku=False, enable_ip_connect=False, yes=False,
                         no_wait=False):
    from azext_bastion_native.management.native_client import enable
    return enable(cmd.cli_ctx, cf_network(cmd.cli_ctx), resource_group_name, name, upgrade_sku=upgrade_sku,
                  enable_ip_connect=enable_ip_connect, yes=yes, no_wait=no_wait)


def native_client_disable(cmd, resource_group_name, name, yes=False, no_wait=False):
    from azext_bastion_native.management.native_client import disable
    return disable(cmd.cli_ctx, cf_network(cmd.cli_ctx), resource_group_name, name, yes=yes, no_wait=no_wait)


def session_list(cmd, resource_group_name, name):
    from azext_bastion_native.management.sessions import list_sessions
    return list_sessions(cmd.cli_ctx, cf_network(cmd.cli_ctx), resource_group_name, name)


def session_disconnect(cmd, resource_group_name, name, session_ids):
    from azext_bastion_native.management.sessions import disconnect_sessions
    return disconnect_sessions(cf_network(cmd.cli_ctx), resource_group_name, name, session_ids)


# -- secure: nsg -----------------------------------------------------------------------------------
def nsg_show(ports=None):
    from azext_bastion_native.nsg.rule_set import bastion_rule_set, rule_as_row
    return [rule_as_row(rule) for rule in bastion_rule_set(ports)]


def nsg_check(cmd, resource_group_name, name, ports=None, nsg_name=None):
    from azext_bastion_native.management.nsg import check_host, exit_when_not_compliant
    report = check_host(cmd.cli_ctx, resource_group_name, name, ports, nsg_name=nsg_name)
    exit_when_not_compliant(cmd.cli_ctx, report)
    return report.as_dict()


def nsg_apply(cmd, resource_group_name, name, ports=None, nsg_name=None, yes=False, no_wait=False,
              override_denies=False):
    from azext_bastion_native.management.nsg import apply
    return apply(cmd.cli_ctx, resource_group_name, name, ports, nsg_name=nsg_name, yes=yes, no_wait=no_wait,
                 override_denies=override_denies)
