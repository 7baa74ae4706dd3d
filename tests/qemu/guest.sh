#!/bin/bash
# Runs inside the guest kernel: the project's kernel tests, then a marker line
# with their exit code for the host to read, then power off.
repo="$1"
select=()  # dp_k=EXPR on the kernel command line: pytest -k EXPR
run=""     # dp_run=SCRIPT: that script of the repository instead of the tests
for arg in $(cat /proc/cmdline); do
  case "$arg" in dp_k=*) select=(-k "${arg#dp_k=}") ;; dp_run=*) run="${arg#dp_run=}" ;; esac
done
# / is already writable (a tmpfs overlay): no tmpfs over /tmp, where the
# repository itself may be; a fresh /run unless the repository is there
case "$repo" in /run/*) ;; *) mount -t tmpfs tmpfs /run ;; esac
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
mkdir -p /run/netns
modprobe fuse  # no udev or systemd here to create /dev/fuse
ip link set lo up
hostname dp-guest
echo "guest kernel: $(uname -r), kprobes: $([ -e /sys/bus/event_source/devices/kprobe ] && echo yes || echo no)," \
  "possible CPUs: $(cat /sys/devices/system/cpu/possible)"
cd "$repo"
if [ -n "$run" ]; then
  .venv/bin/python "$run"
  echo "DP-GUEST-RC=$?"
  echo o > /proc/sysrq-trigger
  sleep 60
fi
.venv/bin/python -m procfs_fuse doctor
# -v: one line per test as it goes, so a slow or hung test shows where. The tests of what
# this kernel does to packets (its hooks, parse, drop reasons and counters) and of the pod
# names its cgroup files give (test_workloads); user space's own (names, views, service,
# filters and slots: same_on_every_kernel) runs in lane 1 only.
DROP_PACKET_NO_SKIP=1 .venv/bin/python -m pytest -p no:cacheprovider -rs -v --durations=5 -m "not same_on_every_kernel" \
  "${select[@]}" tests/kernel/test_drop_packet.py tests/kernel/test_drops.py tests/kernel/test_hops.py \
  tests/kernel/test_segments.py tests/kernel/test_ipv6_headers.py tests/kernel/test_tcp_causes.py \
  tests/kernel/test_memory.py tests/kernel/test_nat.py tests/kernel/test_workloads.py
echo "DP-GUEST-RC=$?"
echo o > /proc/sysrq-trigger
sleep 60  # PID 1 must not exit before the power-off
