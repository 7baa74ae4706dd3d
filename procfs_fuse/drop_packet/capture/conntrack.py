"""Conntrack, to follow a flow through NAT (bpf/drop_packet.c dp_follow_nat):
the offsets of struct nf_conn and its tuples in the running kernel, from
vmlinux's BTF where conntrack is built in, from its module's
(/sys/kernel/btf/nf_conntrack) where it is a loaded module. Where neither
has it, nothing can be translated, and the report's hooks say so."""
import os

from ...kernel.btf import BTF, MODULE_BTF, BTFError
from ..errors import ErrnoError
from .stages import Candidate

NAT = "NAT"  # its line among the hooks
CONNTRACK = "conntrack"
MODULE = "nf_conntrack"
# -D name -> ((struct, member path), ...) added up, and its size: as program.KERNEL_OFFSETS
CONNTRACK_OFFSETS = {
    "DP_CT_STATUS": ((("nf_conn", "status"),), 8),
    "DP_CT_TUPLE": ((("nf_conn", "tuplehash"), ("nf_conntrack_tuple_hash", "tuple")), 40),
    "DP_CT_SRC_ADDR": ((("nf_conntrack_tuple", "src.u3"),), 16),
    "DP_CT_SRC_PORT": ((("nf_conntrack_tuple", "src.u"),), 2),
    "DP_CT_L3NUM": ((("nf_conntrack_tuple", "src.l3num"),), 2),
    "DP_CT_DST_ADDR": ((("nf_conntrack_tuple", "dst.u3"),), 16),
    "DP_CT_DST_PORT": ((("nf_conntrack_tuple", "dst.u"),), 2),
    "DP_CT_PROTONUM": ((("nf_conntrack_tuple", "dst.protonum"),), 1),
}
# The skb's entry: its address | enum ip_conntrack_info in the low 3 bits; read with the skb's window
SKB_NFCT = ("DP_SKB_NFCT", ((("sk_buff", "_nfct"),), 8))


def conntrack_btf(vmlinux, module_btf=MODULE_BTF % MODULE):
    """(the BTF that has struct nf_conn, where it is from) or (None, why there is none)."""
    if vmlinux.has_struct("nf_conn"):
        return vmlinux, "built in"
    if os.path.exists(module_btf):
        return BTF.from_file(module_btf, vmlinux), "module " + MODULE
    return None, "conntrack is not loaded (no struct nf_conn in the kernel's BTF)"


def conntrack_flags(vmlinux, kernel_offsets, module_btf=MODULE_BTF % MODULE):
    """(-D flags of CONNTRACK_OFFSETS and conntrack's constants, or [], the
    hook line's Candidate (None: none) and why not)."""
    btf, where = conntrack_btf(vmlinux, module_btf)
    if btf is None:
        return [], None, where
    try:
        offsets = kernel_offsets(btf, CONNTRACK_OFFSETS)
        constants = {"DP_CT_TUPLE_STRIDE": btf.struct_size("nf_conntrack_tuple_hash"),
                     "DP_CT_TUPLE_LEN": btf.struct_size("nf_conntrack_tuple"),
                     "DP_CT_NAT_MASK": btf.enum("ip_conntrack_status")["IPS_NAT_MASK"],
                     "DP_CT_IS_REPLY": btf.enum("ip_conntrack_info")["IP_CT_IS_REPLY"]}
    except (BTFError, ErrnoError, KeyError) as e:
        return [], None, "conntrack's structs are not as expected: %s" % e
    return (["-D%s=%d" % pair for pair in {**offsets, **constants}.items()],
            Candidate(CONNTRACK, where, ""), None)
