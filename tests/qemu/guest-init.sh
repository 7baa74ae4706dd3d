#!/bin/busybox sh
# PID 1 of the initramfs: the host's root, read-only over 9p, under a tmpfs
# overlay, then the guest script from the repository (named on the command line).
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /lower /rw /newroot
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules.order); do insmod "/modules/$m" || echo "guest-init: insmod $m failed"; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=524288 hostroot /lower || exec sh
mount -t tmpfs -o size=3g tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot || exec sh
for arg in $(cat /proc/cmdline); do
  case "$arg" in dp_repo=*) repo="${arg#dp_repo=}" ;; esac
done
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
mount --move /dev /newroot/dev
exec switch_root /newroot /bin/bash "$repo/tests/qemu/guest.sh" "$repo"
