#!/bin/busybox sh
# Stage 1 of a lab guest, run by the kernel from the initramfs: load the
# few modules needed to reach the host's root over 9p, put a tmpfs overlay
# on it, bind the unpacked kernel's modules over /lib/modules, and switch to
# the lab's guest agent on that root. The kernel command line passes
# LAB_AGENT and LAB_MODULE_DIR (host paths) as environment.
bb=/bin/busybox
fail() {
	echo "lab init: $*" >/dev/console
	$bb poweroff -f
}
$bb mkdir -p /proc /sys /dev /host /rw /newroot
$bb mount -t proc proc /proc
$bb mount -t devtmpfs devtmpfs /dev
for m in $($bb cat /modules/order); do
	$bb insmod /modules/$m || fail "insmod $m"
done
$bb mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=262144 hostroot /host || fail "mount the host's root"
$bb mount -t tmpfs -o mode=755 tmpfs /rw || fail "mount tmpfs"
$bb mkdir -p /rw/upper /rw/work
$bb mount -t overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work overlay /newroot || fail "mount the overlay"
$bb mkdir -p /newroot/lib/modules
$bb mount -o bind "/newroot$LAB_MODULE_DIR" /newroot/lib/modules || fail "bind $LAB_MODULE_DIR"
$bb umount /proc
$bb mount --move /dev /newroot/dev || fail "move /dev"
exec $bb switch_root /newroot "$LAB_AGENT"
fail "switch_root to $LAB_AGENT"
