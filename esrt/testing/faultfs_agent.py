"""ocf:esrt:faultfs, the cluster resource that puts esrt-faultfs under a lab group's region.

In a lab group (esrt.testing.apps.make_service with faulty_disk=True) it runs between the
Filesystem of the shared disk and the region: it mirrors the disk's DATA-disk directory on
DATA, the region's data directory, so that esrt.testing.faults.io_errors and slow_io can fail
or slow the region's disk on the node that holds it, and the disk moves with the group as a
real one does. Start returns once the mount serves (esrt-faultfs without -f daemonizes only
then), so the region never writes under the bare mountpoint; stop unmounts (lazily if a dead
region left files open); monitor looks for the mount.
"""

import sys
from pathlib import Path
from xml.sax.saxutils import quoteattr

from esrt.ha.agent import DEFAULT_OCF_RESOURCE_DIR, PROVIDER
from esrt.home import write_text_atomic

AGENT_NAME = "faultfs"

AGENT_TEXT = r'''#!/bin/sh
# ocf:esrt:faultfs - esrt-faultfs mirroring OCF_RESKEY_source on OCF_RESKEY_mountpoint, for
# esrt.testing's fault campaigns (installed by esrt.testing.faultfs_agent).
PYTHON=@PYTHON@
SOURCE=$OCF_RESKEY_source
MOUNTPOINT=$OCF_RESKEY_mountpoint

mounted() {
    grep -q " $MOUNTPOINT fuse.esrt-faultfs " /proc/self/mounts
}

case "$1" in
meta-data)
    cat <<'EOF'
<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="faultfs" version="1.0">
  <version>1.0</version>
  <longdesc lang="en">esrt-faultfs: a directory mirrored on a mountpoint whose I/O can be
failed or slowed on command (esrt.testing).</longdesc>
  <shortdesc lang="en">esrt fault-injecting disk</shortdesc>
  <parameters>
    <parameter name="source" required="1" unique="0">
      <longdesc lang="en">the directory mirrored</longdesc>
      <shortdesc lang="en">source directory</shortdesc>
      <content type="string"/>
    </parameter>
    <parameter name="mountpoint" required="1" unique="1">
      <longdesc lang="en">where the mirror is mounted</longdesc>
      <shortdesc lang="en">mountpoint</shortdesc>
      <content type="string"/>
    </parameter>
  </parameters>
  <actions>
    <action name="start" timeout="30s"/>
    <action name="stop" timeout="30s"/>
    <action name="monitor" timeout="20s" interval="10s"/>
    <action name="meta-data" timeout="5s"/>
    <action name="validate-all" timeout="5s"/>
  </actions>
</resource-agent>
EOF
    exit 0 ;;
start)
    mounted && exit 0
    mkdir -p "$MOUNTPOINT" || exit 1
    "$PYTHON" -m esrt.testing.faultfs mount "$SOURCE" "$MOUNTPOINT" || exit 1
    exit 0 ;;
stop)
    mounted || exit 0
    "$PYTHON" -m esrt.testing.faultfs unmount "$MOUNTPOINT" || exit 1
    exit 0 ;;
monitor|status)
    mounted && exit 0
    exit 7 ;;
validate-all)
    [ -d "$SOURCE" ] || exit 5
    exit 0 ;;
*)
    exit 3 ;;
esac
'''


def install_agent(root=DEFAULT_OCF_RESOURCE_DIR, python=sys.executable):
    """Install the agent as ROOT/esrt/faultfs (mode 0755), running esrt with `python`; return
    its path."""
    provider_dir = Path(root) / PROVIDER
    provider_dir.mkdir(parents=True, exist_ok=True)
    target = provider_dir / AGENT_NAME
    text = AGENT_TEXT.replace("@PYTHON@", python)
    if target.exists() and target.read_text() == text:
        return target
    write_text_atomic(target, text, mode=0o755)
    return target


def primitive_xml(resource_id, source, mountpoint):
    """The <primitive> of an ocf:esrt:faultfs resource `resource_id`."""
    params = {"source": str(source), "mountpoint": str(mountpoint)}
    nvpairs = "".join(f'<nvpair id="{resource_id}-{name}" name="{name}" value={quoteattr(value)}/>'
                      for name, value in params.items())
    ops = "".join(f'<op id="{resource_id}-{name}" name="{name}" interval="{interval}" '
                  f'timeout="{timeout}"/>'
                  for name, interval, timeout in (("monitor", "10s", "20s"),
                                                  ("start", "0", "30s"), ("stop", "0", "30s")))
    return (f'<primitive id="{resource_id}" class="ocf" provider="{PROVIDER}" '
            f'type="{AGENT_NAME}"><instance_attributes id="{resource_id}-params">{nvpairs}'
            f'</instance_attributes><operations>{ops}</operations></primitive>')
