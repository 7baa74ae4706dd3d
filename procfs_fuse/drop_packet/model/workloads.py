"""Which pod or container a network namespace is, from the node's own files
(no API server, no runtime socket): a Kubernetes pod from a process living
in it, whose /proc/PID/cgroup path holds the pod's UID (kubepods...pod<UID>,
as the systemd and the cgroupfs drivers both write it), and the kubelet's
/var/log/pods/NAMESPACE_NAME_UID; a Docker container from
/var/lib/docker/containers/ID/config.v2.json: its name and its sandbox key,
the path of its network namespace. NodeFiles says where those files are."""
import json
import os
import re
from dataclasses import dataclass

# the systemd driver writes the UID with "_" for "-" (kubepods-besteffort-pod<UID>.slice)
POD_UID = re.compile(r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})")


@dataclass(frozen=True)
class NodeFiles:
    """Where the node's kubelet and Docker keep what names its workloads."""
    root: str = "/"  # the node's root: /host in a container that mounts it there

    def path(self, *parts):
        return os.path.join(self.root, *parts)


def pod_uid(cgroup_text):
    """The pod UID in a /proc/PID/cgroup text, or None."""
    found = POD_UID.search(cgroup_text)
    return found.group(1).replace("_", "-") if found else None


def pods(node):
    """{UID: (namespace, name)} of the pods whose logs the kubelet keeps."""
    try:
        entries = os.listdir(node.path("var/log/pods"))
    except OSError:
        return {}
    found = {}
    for entry in entries:
        parts = entry.split("_")  # namespace and name are DNS labels: no "_" in them
        if len(parts) == 3:
            found[parts[2]] = (parts[0], parts[1])
    return found


def containers(node):
    """{inode of a network namespace: Docker container name} of the node's containers."""
    directory = node.path("var/lib/docker/containers")
    try:
        ids = os.listdir(directory)
    except OSError:
        return {}
    found = {}
    for container in ids:
        try:
            with open(os.path.join(directory, container, "config.v2.json")) as f:
                config = json.load(f)
            key = config["NetworkSettings"]["SandboxKey"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        for path in (node.path(key.lstrip("/")), key):  # as the node sees it, or as this mount does
            try:
                found[os.stat(path).st_ino] = config.get("Name", container).lstrip("/")
                break
            except OSError:
                pass
    return found
