"""Help, in azure-cli's YAML. Every command and group has a summary and at least one example."""

# pylint: disable=line-too-long, too-many-lines

from knack.help_files import helps  # pylint: disable=unused-import

from azext_bastion_native.capabilities import SUPPORT_TABLE

helps['network bastion'] = """
type: group
short-summary: Azure Bastion with your own native client - configure it, secure it, connect through it.
long-summary: >
    From the bastion-native extension. Native client support needs a Standard (or Premium) Bastion host
    with tunneling enabled. Connecting from Cloud Shell is not supported, and SSH keys stored in Azure Key
    Vault must be downloaded to a local file first.
"""

# -- configure -------------------------------------------------------------------------------------
helps['network bastion create'] = """
type: command
short-summary: Deploy a Bastion host with native client support (Standard SKU by default).
long-summary: >
    Checked before anything is sent: the virtual network has a subnet named AzureBastionSubnet of /26 or
    larger, the public IP is Standard SKU with Static allocation, each feature is offered by the SKU (Basic:
    Kerberos only; Standard: all but session recording and private-only; Premium: all; Developer: none), and
    scale units (2-50) only from Standard up. A Developer host takes the virtual network itself and no
    AzureBastionSubnet or public IP; a --private-only (Premium) host takes no public IP. The name follows Azure's
    rules (1-80 letters, digits, underscores, periods and hyphens; starting with a letter or digit, ending with a
    letter, digit or underscore). Deployment takes a while; progress is shown, or use --no-wait and then
    `az network bastion wait --created`.
examples:
  - name: Deploy a Standard host with native client on.
    text: az network bastion create -g MyRG -n MyBastion --vnet-name MyVnet --public-ip-address MyIp
  - name: Also allow connecting by private IP, with 4 scale units, and return at once.
    text: az network bastion create -g MyRG -n MyBastion --vnet-name MyVnet --public-ip-address MyIp --enable-ip-connect true --scale-units 4 --no-wait
  - name: Deploy a Developer host (free, shared pool; no AzureBastionSubnet or public IP).
    text: az network bastion create -g MyRG -n MyBastion --vnet-name MyVnet --sku Developer
  - name: Deploy a private-only Premium host (no public IP).
    text: az network bastion create -g MyRG -n MyBastion --vnet-name MyVnet --sku Premium --private-only true
  - name: With the names of Microsoft's bastion extension.
    text: az network bastion create -g MyRG --bastion-host-name MyBastion --vnet-name MyVnet --public-ip-address MyIp --sku Premium --enable-shareable-link true --enable-session-recording true
"""

helps['network bastion update'] = """
type: command
short-summary: Change a Bastion host's SKU (upwards only), scale units, features or tags.
long-summary: >
    Reads the host, applies the options given (others stay as they are) and writes it back only if nobody changed
    it meanwhile. The SKU rules are checked first: nothing is written when the host's SKU does not offer a feature.
    Also takes azure-cli's generic --set/--add/--remove.
examples:
  - name: Turn native client on.
    text: az network bastion update -g MyRG -n MyBastion --enable-tunneling true
  - name: Upgrade to Premium and turn on session recording.
    text: az network bastion update -g MyRG -n MyBastion --sku Premium --session-recording true
  - name: The same with the names of Microsoft's bastion extension (--sku in its object form).
    text: az network bastion update -g MyRG --bastion-host-name MyBastion --sku name=Premium --enable-session-recording true
  - name: Allow only these IPv4 ranges to connect through a Developer host.
    text: az network bastion update -g MyRG -n MyDevBastion --network-acls "{ip-rules:[{address-prefix:203.0.113.0/24}]}"
  - name: Generic --set goes through the same SKU rules (a downgrade or a feature the SKU lacks is refused).
    text: az network bastion update -g MyRG -n MyBastion --set sku.name=Premium
"""

helps['network bastion show'] = """
type: command
short-summary: Show a Bastion host.
examples:
  - name: Show a host as a table (SKU, native client, IP connect, state).
    text: az network bastion show -g MyRG -n MyBastion -o table
"""

helps['network bastion list'] = """
type: command
short-summary: List Bastion hosts in a resource group or the subscription.
examples:
  - name: List every host in the subscription.
    text: az network bastion list -o table
  - name: List the hosts of one resource group.
    text: az network bastion list -g MyRG -o table
"""

helps['network bastion delete'] = """
type: command
short-summary: Delete a Bastion host.
long-summary: At a terminal it asks first (--yes skips the question); without one (a script) it refuses unless
  --yes is given, as azure-cli does for Microsoft's bastion extension.
examples:
  - name: Delete a host without being asked, and wait until it is gone.
    text: az network bastion delete -g MyRG -n MyBastion --yes
"""

helps['network bastion wait'] = """
type: command
short-summary: Wait until a Bastion host reaches a condition.
long-summary: When --timeout (default 3600 seconds) passes first, it fails (exit status 1) with a message, so a
  script can tell; --deleted on a host that is already gone and --exists on one that is there return at once.
examples:
  - name: Wait for a host created with --no-wait.
    text: az network bastion wait -g MyRG -n MyBastion --created
  - name: Wait until an update has finished.
    text: az network bastion wait -g MyRG -n MyBastion --updated
  - name: Wait at most 10 minutes for a host to be gone (exit status 1 if it is still there then).
    text: az network bastion wait -g MyRG -n MyBastion --deleted --timeout 600
"""

helps['network bastion native-client'] = """
type: group
short-summary: Native client support of a Bastion host (the enableTunneling setting, Standard SKU and up).
"""

helps['network bastion native-client show'] = f"""
type: command
short-summary: Show the native client settings of a host and what this computer can do with them.
long-summary: >
    SKU, enableTunneling, enableIpConnect, enableFileCopy, and the rows of {SUPPORT_TABLE} for this client
    OS (and this extension's additions, marked beyondDocumentedTable): each connection method with Entra ID
    sign-in, file transfer, concurrent VM sessions and custom port support.
examples:
  - name: Show the settings and the methods available from this computer.
    text: az network bastion native-client show -g MyRG -n MyBastion -o table
"""

helps['network bastion native-client enable'] = """
type: command
short-summary: Turn native client support on.
long-summary: >
    On Standard or Premium this sets enableTunneling (no write when it is already on). A Basic host needs
    --upgrade-sku: it is upgraded to Standard in the same update, after a confirmation (pricing changes, and
    SKUs are never downgraded). The update carries the ETag it read, so a change made meanwhile by someone
    else is reported instead of overwritten.
examples:
  - name: Enable native client on a Standard host.
    text: az network bastion native-client enable -g MyRG -n MyBastion
  - name: Upgrade a Basic host to Standard and enable native client and IP connect, without a prompt.
    text: az network bastion native-client enable -g MyRG -n MyBastion --upgrade-sku --enable-ip-connect --yes
"""

helps['network bastion native-client disable'] = """
type: command
short-summary: Turn native client support off (ssh, rdp and tunnel through this host stop working).
examples:
  - name: Disable native client without a prompt.
    text: az network bastion native-client disable -g MyRG -n MyBastion --yes
"""

helps['network bastion session'] = """
type: group
short-summary: Active sessions of a Bastion host.
"""

helps['network bastion session list'] = """
type: command
short-summary: List the active sessions of a Bastion host.
examples:
  - name: List sessions as a table.
    text: az network bastion session list -g MyRG -n MyBastion -o table
"""

helps['network bastion session disconnect'] = """
type: command
short-summary: End active sessions of a Bastion host.
examples:
  - name: End two sessions.
    text: az network bastion session disconnect -g MyRG -n MyBastion --session-ids 1a2b3c 4d5e6f
"""


# -- secure: nsg -----------------------------------------------------------------------------------
helps['network bastion nsg'] = """
type: group
short-summary: Lock AzureBastionSubnet down to the ports native client uses, with the rules Bastion itself needs.
"""

helps['network bastion nsg show'] = """
type: command
short-summary: Show the NSG rule set this extension applies to AzureBastionSubnet.
long-summary: >
    The rules Azure requires on AzureBastionSubnet (it refuses an NSG without any of them:
    NetworkSecurityGroupNotCompliantForAzureBastionSubnet), including outbound SSH 22 and RDP 3389 to
    VirtualNetwork, which always stay allowed; the --ports you add, in AllowCustomPortsOutbound; and an explicit
    Deny for every other port to the virtual network ("limit port access"). No Azure call is made.
examples:
  - name: The default rule set (SSH 22 and RDP 3389).
    text: az network bastion nsg show -o table
  - name: Also let native client reach a custom port range.
    text: az network bastion nsg show --ports 8000-8010 -o table
"""

helps['network bastion nsg check'] = """
type: command
short-summary: Compare the NSG on a host's AzureBastionSubnet with the rule set, rule by rule.
long-summary: >
    Finds the NSG through the host (ipConfigurations -> subnet -> networkSecurityGroup, in any resource group or
    subscription) and reports, per required rule: present; narrowed (narrower than the rule set but Bastion still
    works, as Microsoft documents for inbound 443 from a set of public addresses: compliant, and kept by `nsg
    apply`); missing; wider than needed (e.g. `*` ports or other ports outbound to VirtualNetwork, `*` where a
    service tag belongs); or breaking (a Deny of yours that comes first and blocks what Bastion needs; the finding
    says what stops working). No NSG at all is a finding too; warnings name VM ports native client uses that would
    be blocked. Rules are judged by effect, whatever their names, as Azure evaluates them: an allow counts only
    when it covers every source port and names addresses (not application security groups). An allow ahead of
    the Deny that reaches the virtual network (VirtualNetwork, a private prefix, a prefix inside its address
    space, an application security group) on ports the rule set does not ask for is a leak: wider, and failing.
    A host with Kerberos on also needs DNS 53, Kerberos 88, LDAP 389, kpasswd 464 and LDAPS 636 to its domain
    controller (the virtual network's DNS server inside it); DNS servers inside the virtual network need 53.
    With --nsg-name and no NSG on the subnet, checks that NSG instead (before `nsg apply --nsg-name` associates
    it). The report is printed in the chosen output format; the exit status is 3 when anything is missing,
    breaking or leaks (0 otherwise; narrowed and other wider rules and warnings do not fail).
examples:
  - name: Check the NSG for SSH 22 and RDP 3389.
    text: az network bastion nsg check -g MyResourceGroup -n MyBastion -o table
  - name: Check that a custom port is reachable too, and list only the findings that fail the check.
    text: az network bastion nsg check -g MyResourceGroup -n MyBastion --ports 2222 --query "findings[?fails]"
  - name: Check the NSGs of several hosts in one table (a Host column names each).
    text: az network bastion nsg check --ids $HOST_A_ID $HOST_B_ID -o table
"""

helps['network bastion nsg apply'] = """
type: command
short-summary: Create or update the NSG on a host's AzureBastionSubnet with the rule set, and associate it.
long-summary: >
    Azure refuses an NSG on AzureBastionSubnet that lacks the rules Bastion needs, so SSH 22 and RDP 3389 to
    VirtualNetwork always stay allowed; --ports adds the other ports native client should reach (in
    AllowCustomPortsOutbound), and every other port to the virtual network is denied. Without an NSG on the
    subnet, creates one (default name <bastion>-nsg, or --nsg-name; an existing unassociated NSG of that name is
    merged into) and associates it. With one, adds what is missing without touching your other rules: your
    rules are never written wider than they are (a narrowed rule is kept; where a rule of the set's name allows
    too little, ours is added beside it as <name>-bastion); the only rule rewritten to allow other ports is
    AllowCustomPortsOutbound, to the --ports you give. A Deny of yours that blocks what Bastion needs is reported
    and nothing is changed, unless you pass --override-denies to place Bastion's allow rules above it (a rule of
    ours in the way moves to where it still takes effect; a Deny at priority 100 cannot be outranked). A rule of
    yours that leaks other ports to the virtual network is reported and kept. With Kerberos on, the host's rule
    set also allows what Kerberos needs (AllowKerberosOutbound); DNS servers inside the virtual network get
    AllowDnsOutbound. When one of our priorities is taken by your rule, ours moves to the nearest free one (shown
    in the changes). The
    changes are shown and confirmed before an existing NSG changes (--yes skips the question; without a
    terminal --yes is required). Writes are ordered so Bastion keeps working after each one: allow rules first,
    the Deny last, the subnet association after all rules; a second run reports "no change" and writes nothing.
    --no-wait applies to the subnet association only.
examples:
  - name: Lock AzureBastionSubnet down to SSH and RDP (22 and 3389).
    text: az network bastion nsg apply -g MyResourceGroup -n MyBastion --yes
  - name: Also allow a range of custom ports, in an NSG with a chosen name.
    text: az network bastion nsg apply -g MyResourceGroup -n MyBastion --ports 8000-8010 --nsg-name bastion-subnet-nsg
  - name: Place Bastion's allow rules above a Deny of yours that blocks inbound 443.
    text: az network bastion nsg apply -g MyResourceGroup -n MyBastion --override-denies --yes
"""

# -- connect: tunnel and proxy ---------------------------------------------------------------------
helps['network bastion tunnel'] = f"""
type: command
short-summary: Open a local TCP port that reaches a port on a VM through Bastion.
long-summary: >
    Every connection to the local port gets its own Bastion session, so several clients (ssh, scp, RDP,
    a database client) can use one tunnel at once - more than {SUPPORT_TABLE} promises for "tunnel". The
    command prints "Tunnel is ready, connect on port N" on stderr once listening, and the ready line
    {{"address": ..., "port": N}} on stdout for scripts, in your output format (-o; JSON on one line) and
    through --query (--query port -o tsv prints just the port; -o none nothing). It runs until Ctrl+C,
    SIGTERM or SIGHUP (the terminal closed; exit codes 130, 143 and 129), --timeout or --idle-timeout (exit
    code 0); every Bastion session it opened is deleted on the way out. A --target-resource-id is read
    before the tunnel is ready: no such VM, not a VM or scale set instance, or not running is refused.
    Needs a Standard or Premium host with native client support on.
examples:
  - name: Tunnel local port 50022 to SSH on a VM, then connect with any SSH client.
    text: az network bastion tunnel -g MyResourceGroup -n MyBastion --target-resource-id /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/MyResourceGroup/providers/Microsoft.Compute/virtualMachines/MyVm --resource-port 22 --port 50022
  - name: RDP to a VM by its private IP (IP connect), on a free local port, closing after an hour.
    text: az network bastion tunnel -g MyResourceGroup -n MyBastion --target-ip-address 10.0.0.4 --resource-port 3389 --timeout 3600
  - name: A tunnel for a script - wait for the JSON line, use the port, stop when idle for 60 seconds.
    text: az network bastion tunnel -g MyResourceGroup -n MyBastion --target-ip-address 10.0.0.4 --resource-port 22 --idle-timeout 60 -o json
  - name: Print only the local port once ready (the host may also be given as --ids HOST_ID).
    text: az network bastion tunnel -g MyResourceGroup -n MyBastion --target-ip-address 10.0.0.4 --resource-port 22 --query port -o tsv
"""

helps['network bastion forward'] = f"""
type: command
short-summary: Forward many local ports to VMs by name, and a SOCKS5 proxy to every VM, through one Bastion host.
long-summary: >
    One process for every port you need (Grafana on one VM, Postgres on another, RDP to a third): each -L
    [BIND:]PORT:VM:VMPORT listens on its own local port, and -D [BIND:]PORT runs a SOCKS5 proxy (CONNECT, no
    authentication) that reaches any VM the host reaches by name (curl --socks5-hostname, ssh with
    ProxyCommand "nc -X 5 -x 127.0.0.1:PORT %h %p", a browser's socks5 proxy). A VM is its name (in
    --vm-resource-group, default the host's resource group), NAME.RESOURCEGROUP, its resource ID, or a private IP
    address (IP connect, which reaches ports 22 and 3389 only, per {SUPPORT_TABLE}). Every -L target is read and
    checked before anything listens (it exists, runs, is in the host's virtual network or a connected peering,
    the host's SKU and the table allow it); one refused target refuses the command. A SOCKS5 request that cannot
    be served is answered with its reply code and one log line: no such VM 4 (host unreachable), a VM or address
    outside the host's networks 3, ruled out by the table or the SKU 2, refused by Bastion 5 (connection refused),
    no session in time 6. Each connection gets its own Bastion session. Once listening, it prints a line on stderr
    and the ready line {{"forwards": [{{"address", "port", "target", "targetPort"}}], "socks": {{"address",
    "port"}} or null}} on stdout in your output format and through --query. It runs until Ctrl+C, SIGTERM or
    SIGHUP (exit codes 130, 143 and 129), --timeout or --idle-timeout (exit code 0); every session it opened is
    deleted on the way out. With --background the connection agent listens instead (same checks first) and the
    command returns once it does; `agent status` lists the forward, `agent stop` ends it. Listening on an
    address other than 127.0.0.1 lets whoever reaches it into the VMs.
examples:
  - name: Grafana on web-3 and Postgres on db-1 (in resource group data-rg) on two local ports.
    text: az network bastion forward -g MyResourceGroup -n MyBastion -L 3000:web-3:3000 -L 5432:db-1.data-rg:5432
  - name: A SOCKS5 proxy to every VM by name; then `curl --socks5-hostname 127.0.0.1:1080 http://web-1:8080/`, or `ssh -o ProxyCommand="nc -X 5 -x 127.0.0.1:1080 %h %p" azureuser@web-2`.
    text: az network bastion forward -g MyResourceGroup -n MyBastion -D 1080
  - name: RDP to a VM by private IP (IP connect) on a free local port, closing when idle for 10 minutes.
    text: az network bastion forward -g MyResourceGroup -n MyBastion -L 0:10.0.0.4:3389 --idle-timeout 600
  - name: In a script - the SOCKS5 port once ready.
    text: az network bastion forward -g MyResourceGroup -n MyBastion -D 0 --vm-resource-group MyVms --query socks.port -o tsv
  - name: In the background, for a script (PORT=$(...)) - the connection agent listens and the command returns once it does; `az network bastion agent stop` ends it.
    text: az network bastion forward -g MyResourceGroup -n MyBastion -L 0:db-1:5432 --background --query 'forwards[0].port' -o tsv
"""


helps['network bastion proxy'] = """
type: command
short-summary: Relay stdin and stdout to a port on a VM through Bastion, for ssh's ProxyCommand.
long-summary: >
    Opens one Bastion session and relays bytes until either side closes, --timeout has passed or nothing has
    passed either way for --idle-timeout seconds (exit code 0); stdout carries nothing but the relayed bytes
    (messages go to stderr), and the session is deleted at the end, also after Ctrl+C, SIGTERM or SIGHUP (exit
    codes 130, 143 and 129). With it, plain ssh, scp, sftp, rsync and Ansible connect through Bastion with no
    local port.
examples:
  - name: SSH to a VM through Bastion with your own ssh.
    text: az network bastion proxy -g MyResourceGroup -n MyBastion --target-resource-id /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/MyResourceGroup/providers/Microsoft.Compute/virtualMachines/MyVm --resource-port 22
  - name: The same as ssh sees it (in ~/.ssh/config, ProxyCommand takes the same command line).
    text: az network bastion proxy -g MyResourceGroup -n MyBastion --target-ip-address 10.0.0.4 --resource-port 22
  - name: End the relay (and its Bastion session) after 10 minutes without traffic, or after 8 hours in any case.
    text: az network bastion proxy -g MyResourceGroup -n MyBastion --target-ip-address 10.0.0.4 --resource-port 22 --idle-timeout 600 --timeout 28800
"""

# -- connect: ssh and rdp --------------------------------------------------------------------------
helps['network bastion ssh'] = f"""
type: command
short-summary: SSH into a Linux VM through Bastion with your own OpenSSH client.
long-summary: >
    Per {SUPPORT_TABLE}: from Windows or Linux to a Linux VM, with Entra ID sign-in and custom ports; from
    other clients (macOS) this extension runs ssh over its tunnel too, without Entra ID. Sign-in: password
    (ssh offers nothing else), ssh-key (a local key file; keys in Azure Key Vault are not supported -
    download them first), or aad (a short-lived key and Entra ID certificate, deleted when ssh exits).
    Connecting by IP address allows ports 22 and 3389 only and no Entra ID sign-in. Not in Cloud Shell:
    use the portal's browser connection there. Host keys are remembered per VM in your known_hosts
    (HostKeyAlias bastion.<resource id or IP>, StrictHostKeyChecking=accept-new); override with your own
    `-- -o StrictHostKeyChecking=... -o HostKeyAlias=...`. Arguments after `--` go to ssh as they are,
    and the command exits with ssh's exit code. Entra ID certificates come from AzureCloud, AzureChinaCloud
    and AzureUSGovernment; in another cloud aad is refused unless you give that cloud's scope with
    `az config set bastion_native.ssh_certificate_scope=...`. A Developer SKU host connects to ports 22 and
    3389 only, one connection at a time.
examples:
  - name: SSH with a key file.
    text: az network bastion ssh -g MyRG -n MyBastion --target-resource-id /subscriptions/SUB/resourceGroups/MyRG/providers/Microsoft.Compute/virtualMachines/MyVm --auth-type ssh-key --username azureuser --ssh-key ~/.ssh/id_ed25519
  - name: Sign in with Entra ID and run one command.
    text: az network bastion ssh -g MyRG -n MyBastion --target-resource-id VM_ID --auth-type aad -- uptime
  - name: Password sign-in by private IP, forwarding a local port.
    text: az network bastion ssh -g MyRG -n MyBastion --target-ip-address 10.0.0.4 --auth-type password --username azureuser -- -L 8080:localhost:80
  - name: SSH to a custom port.
    text: az network bastion ssh -g MyRG -n MyBastion --target-resource-id VM_ID --auth-type password --username azureuser --resource-port 2222
  - name: Entra ID sign-in in a cloud outside Microsoft's three, once its SSH certificate scope is set with `az config set bastion_native.ssh_certificate_scope=https://pas.example.cloud/CheckMyAccess/Linux/.default`.
    text: az network bastion ssh -g MyRG -n MyBastion --target-resource-id VM_ID --auth-type aad
"""

helps['network bastion rdp'] = f"""
type: command
short-summary: RDP to a Windows VM through Bastion with your own RDP client.
long-summary: >
    Windows: mstsc with the RDP file the Bastion gateway hands out (Entra ID sign-in with --auth-type aad),
    or with --disable-gateway / --target-ip-address through a local tunnel (no Entra ID then). Linux and
    macOS (beyond {SUPPORT_TABLE}, which offers them the tunnel): a local tunnel and xfreerdp/wlfreerdp
    (macOS: the app registered for .rdp files) when installed, otherwise - or on Linux without a display
    (neither DISPLAY nor WAYLAND_DISPLAY set, e.g. over ssh) - the tunnel stays open and the command to
    connect is printed; no Entra ID sign-in. Temporary .rdp files are private and deleted when
    the client exits. Not in Cloud Shell.
examples:
  - name: RDP to a VM (Windows, through the gateway).
    text: az network bastion rdp -g MyRG -n MyBastion --target-resource-id VM_ID
  - name: Sign in with Entra ID.
    text: az network bastion rdp -g MyRG -n MyBastion --target-resource-id VM_ID --auth-type aad
  - name: RDP by private IP through a local tunnel (also the way on Linux, with FreeRDP).
    text: az network bastion rdp -g MyRG -n MyBastion --target-ip-address 10.0.0.5
"""

# -- extras: doctor --------------------------------------------------------------------------------
helps['network bastion doctor'] = f"""
type: command
short-summary: Check why native client connections will or will not work, with the fix for each problem.
long-summary: >
    Runs every check it can and prints one row each - Check, Status (pass, fail, warn, skip), Detail and Fix:
    Cloud Shell, sign-in (an ARM token), the host's SKU (Standard or Premium), native client (tunneling), IP
    connect (with --target-ip-address; ports 22 and 3389 only), the target VM (exists, running, OS), the
    method against {SUPPORT_TABLE} for this client OS, the NSG on AzureBastionSubnet (rules that
    break Bastion, the target port blocked outbound), local programs (ssh and scp, or an RDP client), and
    the data plane: with a target, one session is minted, its websocket opened (Bastion connects to the target
    port, so a port nothing listens on fails here) and closed with nothing sent, and the session deleted (the
    round trip is shown);
    without one, a TLS handshake with the host (REQUESTS_CA_BUNDLE and
    AZURE_CLI_DISABLE_CONNECTION_VERIFICATION apply). A check that needs a fact an earlier one could not get
    is skipped. The exit status is 3 when any check fails (warnings do not fail), as for `nsg check`.
examples:
  - name: Check a host and an SSH connection to a VM.
    text: az network bastion doctor -g MyRG -n MyBastion --target-resource-id /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/MyRG/providers/Microsoft.Compute/virtualMachines/MyVm -o table
  - name: Check RDP by private IP address (IP connect).
    text: az network bastion doctor -g MyRG -n MyBastion --target-ip-address 10.0.0.5 --method rdp -o table
  - name: List only what needs a fix.
    text: az network bastion doctor -g MyRG -n MyBastion --query "[?status=='fail'].[check, fix]" -o tsv
"""

# -- extras: ssh-config and file transfer ----------------------------------------------------------
helps['network bastion ssh-config'] = """
type: command
short-summary: Write an OpenSSH Host block that reaches a VM through Bastion, for plain ssh, scp, sftp, rsync and Ansible.
long-summary: >
    Every ssh-based tool then connects through Bastion with `ssh ALIAS`, `scp FILE ALIAS:`, `rsync -e ssh`,
    `sftp ALIAS` or an Ansible inventory naming ALIAS. On Linux and macOS the block's ProxyCommand is a small
    helper (`python -I .../agent/proxy_helper.py`) that asks the connection agent (`az network bastion agent`)
    for the connection, starting it in the background when none runs: a new ssh connection then costs no az
    start-up. On Windows, or with --no-agent, it runs `az network bastion proxy` (this az, by absolute path)
    for each connection. The block goes before the first line of your config that ssh would read first for
    its alias (ssh takes the first value it finds): a top-level line setting one of its options, an Include, a
    matching `Host` or any `Match` (among top-level lines it ends with `Host *`, so yours still apply to every
    other host); the new file is read back with `ssh -G`, and nothing is written unless ssh would use exactly
    the block's ProxyCommand, User, HostName, Port, IdentityFile and HostKeyAlias, and no ProxyJump. Runs at the
    same time on one file wait for each other (a lock), so no block is lost. It pins the host key under the same known_hosts name that
    `az network bastion ssh` uses for the VM (HostKeyAlias, StrictHostKeyChecking accept-new), and with
    --ssh-key adds IdentityFile and IdentitiesOnly yes. Without --file the block is printed on stdout (with -o,
    a result instead: {"blocks": {ALIAS: TEXT}, "skipped": [...]}; -o none prints nothing); with --file it is
    added to that config (created 0600 if absent), between marker comments: a second run for the same alias
    is refused unless --overwrite, which replaces exactly that block and nothing else; connect with
    `ssh -F FILE ALIAS` when FILE is not ~/.ssh/config. The host must have native client on; a VM gets a block
    only when it exists and runs: for --target-resource-id a stopped VM is refused, for --vm-resource-group and
    --all it is skipped (as are Windows VMs, VMs the host does not reach, VMs whose NIC cannot be read, and
    names or users from ARM with control characters), each named with its reason on stderr and in -o json;
    --prune keeps their blocks. Aliases: the VM name; when two VMs of a run share one, NAME-RESOURCEGROUP; a VM
    whose block is already in --file keeps that block's alias, whatever the scope. Not in Cloud Shell.
examples:
  - name: Add a Host block for a VM to your ssh config, then connect with `ssh web1`.
    text: az network bastion ssh-config -g MyRG -n MyBastion --target-resource-id /subscriptions/SUB/resourceGroups/MyRG/providers/Microsoft.Compute/virtualMachines/MyVm --host-alias web1 --username azureuser --ssh-key ~/.ssh/id_ed25519 --file ~/.ssh/config
  - name: Print the block (default alias - the VM name) to paste it yourself.
    text: az network bastion ssh-config -g MyRG -n MyBastion --target-resource-id VM_ID
  - name: The blocks of a resource group as JSON, the skipped VMs with their reasons beside them.
    text: az network bastion ssh-config -g MyRG -n MyBastion --vm-resource-group WebRG -o json
  - name: Update the block after the VM moved to another Bastion host.
    text: az network bastion ssh-config -g MyRG -n OtherBastion --target-resource-id VM_ID --host-alias web1 --file ~/.ssh/config --overwrite
  - name: A block for every Linux VM of a resource group (alias = VM name) and an Ansible inventory of them; a re-run updates the blocks in place, --prune drops those of VMs that are gone.
    text: az network bastion ssh-config -g MyRG -n MyBastion --vm-resource-group WebRG --ssh-key ~/.ssh/id_ed25519 --file ~/.ssh/config --inventory ~/fleet.yml --prune
  - name: Every VM the host reaches (its virtual network and peered ones); then `ansible -i ~/fleet.ini all -m ping`.
    text: az network bastion ssh-config -g MyRG -n MyBastion --all --file ~/.ssh/config --inventory ~/fleet.ini --inventory-format ini
  - name: Sign in to a resource group's VMs with Entra ID (AADSSHLoginForLinux); the certificate renews itself before any ssh that would find it expired.
    text: az network bastion ssh-config -g MyRG -n MyBastion --vm-resource-group WebRG --auth-type aad --file ~/.ssh/config --inventory ~/fleet.yml
"""

helps['network bastion agent'] = """
type: group
short-summary: The connection agent behind ssh-config's ProxyCommand (Linux and macOS).
long-summary: >
    One process per user and az sign-in (AZURE_CONFIG_DIR) that keeps what every ssh connection through Bastion
    needs: the ARM token (refreshed before it expires), each Bastion host read from ARM and its data-plane TLS.
    It listens on a Unix socket (0600) in a private 0700 directory, mints a Bastion session per connection and
    deletes it when that connection ends. The ProxyCommand helper starts it when needed; it exits by itself
    after --idle-timeout (default 15 minutes) with no connection, and on SIGTERM/SIGHUP, deleting every session.
    One agent serves every Bastion host and subscription: one socket for the helper to find, one token per
    subscription. Windows has no agent: ssh-config writes `az network bastion proxy` there.
"""

helps['network bastion agent start'] = """
type: command
short-summary: Start the connection agent in the background (nothing to do if it runs); prints its status.
examples:
  - name: Start an agent that stays up for an hour without connections.
    text: az network bastion agent start --idle-timeout 3600
"""

helps['network bastion agent stop'] = """
type: command
short-summary: Stop the connection agent; its live connections end and every Bastion session is deleted.
examples:
  - name: Stop it, e.g. before signing in as someone else (the next ssh starts a new one).
    text: az network bastion agent stop
  - name: Stop one background forward (its id from `forward --background` or `agent status`) and keep the agent and the other forwards running.
    text: az network bastion agent stop --forward 2
"""

helps['network bastion agent status'] = """
type: command
short-summary: Show the connection agent's pid, socket, uptime, live connections per target and sessions open.
examples:
  - name: Is it running, and with how many connections?
    text: az network bastion agent status --query "{running:running, live:liveConnections}" -o json
"""

helps['network bastion file'] = f"""
type: group
short-summary: Copy files to and from a VM through Bastion with scp.
long-summary: >
    Per {SUPPORT_TABLE}, the tunnel path offers file transfer for every client (Windows, Linux,
    other): these commands run your own OpenSSH scp over a local tunnel to the VM, for Linux VMs and any VM
    with an SSH server. Every Bastion session is deleted when scp exits, fails or is interrupted.
"""

helps['network bastion file upload'] = f"""
type: command
short-summary: Copy a local file (or directory, with --recursive) to a VM through Bastion.
long-summary: >
    Runs scp over a local tunnel (the tunnel path has file transfer on every client OS, per {SUPPORT_TABLE}).
    Sign-in: password (scp tries nothing else) or ssh-key (a local key file; keys in Azure Key Vault are not
    supported - download them first). Host keys are pinned per VM as `az network bastion ssh` does. On a
    terminal scp shows its progress meter on stderr; otherwise one line with bytes and seconds follows a
    success. Nothing goes to stdout. Exits with scp's exit code. Not in Cloud Shell.
examples:
  - name: Upload a file to the admin user's home directory.
    text: az network bastion file upload -g MyRG -n MyBastion --target-resource-id VM_ID --auth-type ssh-key --ssh-key ~/.ssh/id_ed25519 --source ./app.tar.gz --destination app.tar.gz
  - name: Upload a directory with a password, limiting bandwidth (scp -l, in Kbit/s).
    text: az network bastion file upload -g MyRG -n MyBastion --target-resource-id VM_ID --auth-type password --username azureuser --source ./site --destination /tmp --recursive -- -l 8000
"""

helps['network bastion file download'] = f"""
type: command
short-summary: Copy a file (or directory, with --recursive) from a VM to this machine through Bastion.
long-summary: >
    Runs scp over a local tunnel (the tunnel path has file transfer on every client OS, per {SUPPORT_TABLE}).
    Sign-in and host-key pinning as for upload. A remote path that does not exist ends with scp's exit code
    and message. On a terminal scp shows its progress meter on stderr; otherwise one line with bytes and
    seconds follows a success. Not in Cloud Shell.
examples:
  - name: Download a log file into the current directory.
    text: az network bastion file download -g MyRG -n MyBastion --target-resource-id VM_ID --auth-type ssh-key --ssh-key ~/.ssh/id_ed25519 --source /var/log/syslog --destination .
  - name: Download a directory with a password.
    text: az network bastion file download -g MyRG -n MyBastion --target-resource-id VM_ID --auth-type password --username azureuser --source /etc/nginx --destination ./nginx-conf --recursive
"""
