"""The cgroup v2 root, where cgroup_skb programs attach: wherever it is
mounted (/sys/fs/cgroup on unified hosts, /sys/fs/cgroup/unified on hybrid
ones), or one mounted by us where none is."""
import os
import subprocess

MOUNTINFO = "/proc/self/mountinfo"
OUR_MOUNT = "/run/drop-packet/cgroup2"  # only where the host has no cgroup v2 mount


def v2_mounts(mountinfo_text):
    """Mount points of cgroup2 file systems in /proc/self/mountinfo text, in its order."""
    found = []
    for line in mountinfo_text.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        fs_type = line.split(" - ", 1)[1].split()[0]
        if fs_type == "cgroup2" and fields[3] == "/":  # the hierarchy's root, not a bind of a subtree
            found.append(fields[4].replace("\\040", " "))
    return found


def v2_root(mountinfo=MOUNTINFO):
    """The cgroup v2 root's mount point, or None."""
    try:
        with open(mountinfo) as f:
            mounts = v2_mounts(f.read())
    except OSError:
        return None
    return mounts[0] if mounts else None


def ensure_v2_root():
    """The cgroup v2 root, mounted at OUR_MOUNT first where none is."""
    root = v2_root()
    if root is None:
        os.makedirs(OUR_MOUNT, exist_ok=True)
        subprocess.run(["mount", "-t", "cgroup2", "none", OUR_MOUNT], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        root = OUR_MOUNT
    return root
