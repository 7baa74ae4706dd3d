#!/usr/bin/env python3
"""The kprobe lane: the kernel tests inside Debian's own kernel under QEMU (TCG).

The host kernel here has no kprobes; Debian's linux-image-amd64 has. This boots
that kernel with the host's root shared read-only over 9p (a tmpfs overlay on
top, so nothing on the host changes), runs tests/kernel's accounting tests as
root inside it, prints the guest's output, and exits with the guest's result.
Usage (root): .venv/bin/python tests/qemu/lane.py [-k EXPR]   (EXPR: no spaces)
       .venv/bin/python tests/qemu/lane.py --run SCRIPT   (a script of the repository, no
       arguments, instead of the tests: a benchmark in the 64-possible-CPU guest)
"""
import gzip
import io
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = Path("/var/cache/drop-packet/qemu")
PACKAGES = ["qemu-system-x86", "linux-image-amd64", "linux-headers-amd64", "busybox-static"]
# What the initramfs needs to reach the host's root: virtio PCI, 9p over virtio, overlayfs.
BOOT_MODULES = ["virtio_pci", "9pnet_virtio", "9p", "overlay"]
MARKER = re.compile(r"DP-GUEST-RC=(\d+)")
# Bounds a hung guest, far above a run's time (5 min here, 17 under a busy
# host): CI's 90 minutes must never be spent waiting on it.
LANE_TIMEOUT = 45 * 60
# The guest's kernel allocates per-CPU memory for this many possible CPUs on
# its 2 running ones, as a big host's does: the tests see a big host's tables.
POSSIBLE_CPUS = 64


def install():
    missing = [p for p in PACKAGES if subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True).stdout != "install ok installed"]
    if missing:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "--no-remove"] + missing,
                       check=True, env=env, stdout=subprocess.DEVNULL)


def guest_kernel():
    """The newest /boot/vmlinuz-* whose modules and headers are installed."""
    versions = [p.name[len("vmlinuz-"):] for p in Path("/boot").glob("vmlinuz-*")]
    versions = [v for v in versions if Path("/lib/modules", v, "build", "include").is_dir()]
    if not versions:
        sys.exit("lane: no /boot/vmlinuz-* with its modules and headers")
    return max(versions, key=lambda v: [int(n) for n in re.findall(r"\d+", v)])


def module_order(version, wanted):
    """Module files in load order (dependencies first), from modules.dep."""
    deps = {}
    for line in Path("/lib/modules", version, "modules.dep").read_text().splitlines():
        path, _, rest = line.partition(":")
        deps[Path(path).name.split(".ko")[0].replace("-", "_")] = (path, rest.split())
    order = []

    def visit(path):
        name = Path(path).name.split(".ko")[0].replace("-", "_")
        for dep in deps[name][1]:
            visit(dep)
        if path not in order:
            order.append(path)

    for name in wanted:
        visit(deps[name][0])
    return order


def cpio_newc(entries):
    """A newc cpio archive of (name, mode, data) entries."""
    out = io.BytesIO()
    for ino, (name, mode, data) in enumerate(entries + [("TRAILER!!!", 0, b"")], 1):
        name_bytes = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name_bytes), 0]
        out.write(b"070701" + b"".join(b"%08X" % f for f in fields) + name_bytes)
        out.write(b"\0" * (-(110 + len(name_bytes)) % 4) + data + b"\0" * (-len(data) % 4))
    return out.getvalue()


def initramfs(version):
    target = CACHE / ("initrd-%s.cpio.gz" % version)
    modules = module_order(version, BOOT_MODULES)
    entries = [("bin", 0o40755, b""), ("modules", 0o40755, b""),
               ("bin/busybox", 0o100755, Path("/bin/busybox").read_bytes()),
               ("init", 0o100755, (REPO / "tests/qemu/guest-init.sh").read_bytes()),
               ("modules.order", 0o100644, "".join(Path(m).name + "\n" for m in modules).encode())]
    entries += [("modules/" + Path(m).name, 0o100644, Path("/lib/modules", version, m).read_bytes())
                for m in modules]
    CACHE.mkdir(parents=True, exist_ok=True)
    target.write_bytes(gzip.compress(cpio_newc(entries)))
    return target


def main():
    if os.geteuid() != 0:
        sys.exit("lane: run as root")
    install()
    version = guest_kernel()
    initrd = initramfs(version)
    print("lane: booting Debian's kernel %s under QEMU (TCG), %d possible CPUs" % (version, POSSIBLE_CPUS), flush=True)
    option = {"-k": "dp_k", "--run": "dp_run"}.get(sys.argv[1]) if len(sys.argv) == 3 else None
    if len(sys.argv) > 1 and option is None:
        sys.exit(__doc__)
    select = " %s=%s" % (option, sys.argv[2]) if option else ""
    command = [
        "qemu-system-x86_64", "-accel", "tcg", "-smp", "2,maxcpus=%d" % POSSIBLE_CPUS, "-m", "4096", "-nographic", "-no-reboot",
        "-kernel", "/boot/vmlinuz-%s" % version, "-initrd", str(initrd),
        "-append", "console=ttyS0 panic=-1 quiet dp_repo=%s%s" % (REPO, select),
        "-fsdev", "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap",
        "-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot",
    ]
    started = time.monotonic()
    guest = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             text=True, errors="replace")
    timed_out = threading.Event()

    def end_hung_guest():
        timed_out.set()
        guest.kill()  # its output ends, and so does the loop below

    watchdog = threading.Timer(LANE_TIMEOUT, end_hung_guest)
    watchdog.start()
    result = None
    try:
        for line in guest.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            found = MARKER.search(line)
            if found:
                result = int(found.group(1))
        guest.wait()
    finally:
        watchdog.cancel()
    print("lane: %.0f s wall time" % (time.monotonic() - started), flush=True)
    if timed_out.is_set():
        sys.exit("lane: FAILED: the guest ran past %d s and was ended" % LANE_TIMEOUT)
    if result is None:
        sys.exit("lane: the guest ended without a test result")
    sys.exit(result)


if __name__ == "__main__":
    main()
