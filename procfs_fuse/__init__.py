"""procfs_fuse: a FUSE emulation of /proc/mooc/net/drop-packet, backed by BCC."""
