"""Configuration text for a lab cluster: corosync.conf, the initial CIB, node-init, groups.

Kept apart from lab.py (which runs processes) so the generated files can be read and tested
on their own. Timings are short on purpose: a lab exists to measure takeovers, so token loss,
elections and monitors must be detected in seconds, not the production defaults.
"""

from xml.sax.saxutils import quoteattr

TOKEN_MS = 1000
DC_DEADTIME = "2s"
MONITOR_INTERVAL = "2s"
# A random delay before fencing keeps the two nodes of a two-node lab that lost each other
# from shooting each other at the same instant. The fence agent already refuses to fence from
# a node that cannot reach the LAN, so a short one suffices; every second of it is a second of
# takeover after power-off.
FENCE_DELAY_MAX = "1s"
FAILURE_TIMEOUT = "20s"
STICKINESS = 1000
PREFER_SCORE = 100

# Directories each node gets privately (bind-mounted from its own directory in the workdir)
# and the owners Pacemaker needs on them.
NODE_DIRS = {
    "etc/corosync": ("root", "root", 0o755),
    "var/lib/corosync": ("root", "root", 0o755),
    "var/lib/pacemaker": ("hacluster", "haclient", 0o750),
    "var/lib/pacemaker/cib": ("hacluster", "haclient", 0o750),
    "var/lib/pacemaker/pengine": ("hacluster", "haclient", 0o750),
    "var/lib/pacemaker/blackbox": ("hacluster", "haclient", 0o750),
    "var/lib/pacemaker/cores": ("hacluster", "haclient", 0o750),
    "var/log/pacemaker": ("hacluster", "haclient", 0o770),
}
BIND_MOUNTS = ("etc/corosync", "var/lib/corosync", "var/lib/pacemaker", "var/log/pacemaker")


def corosync_conf(cluster_name, addresses, totem=None):
    """corosync.conf for nodes node1..nodeN at `addresses` (knet, 1 s token, votequorum);
    `totem` adds or overrides settings of the totem section."""
    settings = dict({"token": TOKEN_MS}, **(totem or {}))
    lines = "".join(f"    {name}: {value}\n" for name, value in settings.items())
    nodes = "".join(
        f"    node {{\n        ring0_addr: {address}\n        name: node{index}\n"
        f"        nodeid: {index}\n    }}\n"
        for index, address in enumerate(addresses, start=1))
    two_node = "    two_node: 1\n" if len(addresses) == 2 else ""
    return (
        "# Written by esrt.testing for one lab; do not edit.\n"
        "totem {\n    version: 2\n"
        f"    cluster_name: {cluster_name}\n"
        "    transport: knet\n"
        f"{lines}"
        "    crypto_cipher: none\n    crypto_hash: none\n}\n"
        f"nodelist {{\n{nodes}}}\n"
        f"quorum {{\n    provider: corosync_votequorum\n{two_node}}}\n"
        "logging {\n    to_stderr: no\n    to_syslog: no\n    to_logfile: yes\n"
        "    logfile: /var/log/pacemaker/corosync.log\n    timestamp: on\n}\n")


def initial_cib(node_names, power_socket, lan_check=None):
    """The CIB every node boots with: fast election, fencing on, the fence device.

    It must be on disk before the first start: dc-deadtime only helps if known at the very
    first election (the 20 s default makes a boot take ~22 s).
    """
    host_list = " ".join(node_names)
    # Only two nodes can fence each other at once: of three or more, the side without quorum
    # fences nobody, and a delay would only lengthen every takeover.
    fence_delay = FENCE_DELAY_MAX if len(node_names) == 2 else "0"
    lan = (f'\n          <nvpair id="lab-fence-lan-check" name="lan_check" value="{lan_check}"/>'
           if lan_check else "")
    return f"""<cib crm_feature_set="3.16.1" validate-with="pacemaker-3.9" epoch="5"
     num_updates="0" admin_epoch="0">
  <configuration>
    <crm_config>
      <cluster_property_set id="cib-bootstrap-options">
        <nvpair id="opt-dc-deadtime" name="dc-deadtime" value="{DC_DEADTIME}"/>
        <nvpair id="opt-stonith-enabled" name="stonith-enabled" value="true"/>
        <nvpair id="opt-stonith-action" name="stonith-action" value="off"/>
        <nvpair id="opt-stonith-timeout" name="stonith-timeout" value="30s"/>
        <nvpair id="opt-recheck" name="cluster-recheck-interval" value="5s"/>
      </cluster_property_set>
    </crm_config>
    <nodes/>
    <resources>
      <primitive id="lab-fence" class="stonith" type="fence_esrtlab">
        <instance_attributes id="lab-fence-params">
          <nvpair id="lab-fence-socket" name="socket" value={quoteattr(str(power_socket))}/>
          <nvpair id="lab-fence-hosts" name="pcmk_host_list" value="{host_list}"/>
          <nvpair id="lab-fence-check" name="pcmk_host_check" value="static-list"/>
          <nvpair id="lab-fence-delay" name="pcmk_delay_max" value="{fence_delay}"/>{lan}
        </instance_attributes>
        <operations>
          <op id="lab-fence-monitor" name="monitor" interval="30s"/>
        </operations>
      </primitive>
    </resources>
    <constraints/>
  </configuration>
  <status/>
</cib>
"""


def node_init_script():
    """The script run as PID 1 of each node: private mounts, corosync, pacemakerd, reaping.

    Arguments: the node's directory in the workdir and its name (hostname).
    """
    binds = "\n".join(f'mount --bind "$NODE_DIR/{path}" "/{path}"' for path in BIND_MOUNTS)
    return f"""#!/bin/bash
# node-init of an esrt.testing lab node (written by esrt.testing.lab; runs as PID 1 of the
# node's PID namespace). Killing this process powers the node off.
set -e
NODE_DIR="$1"
hostname "$2"
# Nothing mounted here may leak to the host or other nodes (and the other way round).
mount --make-rprivate /
{binds}
# libqb names its IPC files after PIDs, which repeat between PID namespaces: /dev/shm and
# /run must be the node's own.
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=755 tmpfs /run
ln -s /dev/shm /run/shm
mkdir -p /run/lock /run/resource-agents /run/fence-agents /run/crm /run/pacemaker /run/corosync
chmod 1777 /run/lock
chown hacluster:haclient /run/crm /run/pacemaker
chmod 1755 /run/resource-agents /run/fence-agents
ip link set lo up
set +e
export PCMK_logfile=/var/log/pacemaker/pacemaker.log PCMK_logfacility=none
corosync -f >>/var/log/pacemaker/corosync.out 2>&1 &
for attempt in $(seq 200); do
    corosync-cfgtool -s >/dev/null 2>&1 && break
    sleep 0.05
done
pacemakerd -f >>/var/log/pacemaker/pacemakerd.out 2>&1 &
# As PID 1, bash reaps every orphan of the node (mfds, regions) while it waits.
while true; do
    sleep 1 &
    wait $! 2>/dev/null
done
"""


def _nvpairs(prefix, values):
    return "".join(f'<nvpair id="{prefix}-{key.replace("_", "-")}" name="{key}" '
                   f'value={quoteattr(str(value))}/>' for key, value in values.items())


def home_rules(resource_id, homes):
    """Instance attribute sets giving resource `resource_id` the `home` of the node it runs on
    (`homes`: node name -> ESRT_HOME), since each node records its processes in its own home."""
    return "".join(
        f'<instance_attributes id="{resource_id}-home-{name}" score="{100 - index}">'
        f'<rule id="{resource_id}-home-{name}-rule" score="INFINITY">'
        f'<expression id="{resource_id}-home-{name}-expr" attribute="#uname" operation="eq" '
        f'value="{name}"/></rule>{_nvpairs(f"{resource_id}-home-{name}", {"home": home})}'
        '</instance_attributes>'
        for index, (name, home) in enumerate(sorted(homes.items())))


def standby_xml(group, region_config, region_name, homes):
    """(clone XML, [constraint XML]): a clone running the standby region `region_name` on every
    node, from `region_config` (a region file with "standby": true that every node can read),
    and the constraints that keep group `group` (whose region resource activates it) with a
    running instance, started after it."""
    clone_id, primitive_id = f"{group}-standby", f"{group}-standby-region"
    ops = (f'<op id="{primitive_id}-monitor" name="monitor" interval="{MONITOR_INTERVAL}" '
           f'timeout="20s"/><op id="{primitive_id}-start" name="start" interval="0" '
           f'timeout="90s"/><op id="{primitive_id}-stop" name="stop" interval="0" '
           'timeout="60s"/>')
    params = {"config": region_config, "name": region_name}
    resources = (
        f'<clone id="{clone_id}"><meta_attributes id="{clone_id}-meta">'
        f'{_nvpairs(f"{clone_id}-meta", {"interleave": "true"})}</meta_attributes>'
        f'<primitive id="{primitive_id}" class="ocf" provider="esrt" type="region">'
        f'<instance_attributes id="{primitive_id}-params">{_nvpairs(primitive_id, params)}'
        f'</instance_attributes>{home_rules(primitive_id, homes)}'
        f'<operations>{ops}</operations></primitive></clone>')
    constraints = (
        f'<rsc_colocation id="{group}-with-standby" rsc="{group}" with-rsc="{clone_id}" '
        'score="INFINITY"/>',
        f'<rsc_order id="{group}-after-standby" first="{clone_id}" then="{group}" '
        'kind="Mandatory"/>')
    return resources, constraints


def group_xml(group, ip, nic, disk, mountpoint, region_config, homes, region_name=None,
              extra_resources=(), region_params=None, stopped=False, before_region=()):
    """The <group> element: IPaddr2 + Filesystem (+ `before_region` primitives, e.g. a
    faulty-disk layer) + ocf:esrt:region (+ extra primitives).

    `homes` maps node name to its ESRT_HOME; the region's `home` parameter is chosen per node
    with rules, since each node records its processes in its own home. With `stopped` the
    group is created with target-role=Stopped (see held_nvpair_id), so constraints can be added
    before the cluster places it.
    """
    ops = (f'<op id="{{rid}}-monitor" name="monitor" interval="{MONITOR_INTERVAL}" '
           'timeout="20s"/><op id="{rid}-start" name="start" interval="0" timeout="90s"/>'
           '<op id="{rid}-stop" name="stop" interval="0" timeout="60s"/>')
    ip_id, fs_id, region_id = resource_ids(group)
    region_params = {"config": region_config, **(region_params or {})}
    if region_name:
        region_params["name"] = region_name
    home_sets = home_rules(region_id, homes)
    meta = {"resource-stickiness": STICKINESS, "migration-threshold": 1,
            "failure-timeout": FAILURE_TIMEOUT}
    if stopped:
        meta["target-role"] = "Stopped"
    return (
        f'<group id="{group}">'
        f'<meta_attributes id="{group}-meta">'
        f'{_nvpairs(f"{group}-meta", meta)}'
        '</meta_attributes>'
        f'<primitive id="{ip_id}" class="ocf" provider="heartbeat" type="IPaddr2">'
        f'<instance_attributes id="{ip_id}-params">'
        f'{_nvpairs(ip_id, {"ip": ip, "cidr_netmask": 24, "nic": nic})}</instance_attributes>'
        f'<operations>{ops.format(rid=ip_id)}</operations></primitive>'
        f'<primitive id="{fs_id}" class="ocf" provider="heartbeat" type="Filesystem">'
        f'<instance_attributes id="{fs_id}-params">'
        f'{_nvpairs(fs_id, {"device": disk, "directory": mountpoint, "fstype": "ext4"})}'
        f'</instance_attributes><operations>{ops.format(rid=fs_id)}</operations></primitive>'
        + "".join(before_region) +
        f'<primitive id="{region_id}" class="ocf" provider="esrt" type="region">'
        f'<instance_attributes id="{region_id}-params">{_nvpairs(region_id, region_params)}'
        f'</instance_attributes>{home_sets}'
        f'<operations>{ops.format(rid=region_id)}</operations></primitive>'
        + "".join(extra_resources) + '</group>')


def location_xml(group, node_name):
    """A finite preference for `node_name`: lower than stickiness, so no automatic fail-back."""
    return (f'<rsc_location id="{group}-prefers-{node_name}" rsc="{group}" node="{node_name}" '
            f'score="{PREFER_SCORE}"/>')


def held_nvpair_id(group):
    """Id of the target-role=Stopped meta attribute of a group created with stopped=True."""
    return f"{group}-meta-target-role"


def resource_ids(group):
    """(IP, filesystem, region) resource ids of group `group`."""
    return f"{group}-ip", f"{group}-fs", f"{group}-region"
