"""The BPF program built for the running kernel: bpf/drop_packet.c (or a
reference build that includes its parts) compiled by BCC with the kernel's
struct offsets (BTF) and event-record offsets (tracefs) as -D flags, and
patched where BCC cannot emit what it needs (kernel/bytecode.py)."""
import errno
import logging

from ...kernel import bytecode, headers, tracefs
from ...kernel.btf import BTF
from ..errors import ErrnoError
from . import conntrack
from .hooks import StageHook
from .settings import DEFAULT_MAX_FLOWS
from .stages import BPF_DIR, PROGRAM, RECORDS, TABLE

log = logging.getLogger(__name__)

MIN_MAX_DROPS = 4096
EVERY_PROGRAM = frozenset(c.function for row in TABLE for c in row.candidates)  # bpf/programs.h's


def max_drops_for(max_flows):
    """The drops table's capacity: room for a drop site per (flow, hop) entry,
    so a flood of dropped flows keeps its reasons (4096 at least: one flow can
    drop at many sites)."""
    return max(MIN_MAX_DROPS, max_flows)


def max_nats_for(max_flows):
    """The translations table's capacity: a translation per flow, a flow
    being an entry per hop in the flow table (1024 at least)."""
    return max(1024, max_flows // 4)

# -D name -> (the members that lead to it: (struct, member) each, offsets
# added up; its size in bytes): the kernel memory the programs read.
KERNEL_OFFSETS = {
    "DP_SKB_HEAD": ((("sk_buff", "head"),), 8),
    "DP_SKB_DATA": ((("sk_buff", "data"),), 8),
    "DP_SKB_NETWORK_HEADER": ((("sk_buff", "network_header"),), 2),
    "DP_SKB_PROTOCOL": ((("sk_buff", "protocol"),), 2),
    "DP_SKB_DEV": ((("sk_buff", "dev"),), 8),
    "DP_SKB_SK": ((("sk_buff", "sk"),), 8),
    "DP_SKB_END": ((("sk_buff", "end"),), 4),  # sk_buff_data_t: skb_shinfo(skb) is head + end
    "DP_SHINFO_GSO_SIZE": ((("skb_shared_info", "gso_size"),), 2),
    "DP_SHINFO_GSO_SEGS": ((("skb_shared_info", "gso_segs"),), 2),
    "DP_SKB_TCP_GSO_SEGS": ((("sk_buff", "cb"), ("tcp_skb_cb", "tcp_gso_segs")), 2),  # tcp_skb_pcount()
    "DP_DEV_IFINDEX": ((("net_device", "ifindex"),), 4),
    "DP_DEV_NET": ((("net_device", "nd_net"),), 8),  # possible_net_t: the struct net pointer
    "DP_DEV_NAME": ((("net_device", "name"),), 16),
    "DP_NET_INUM": ((("net", "ns"), ("ns_common", "inum")), 4),
    "DP_SK_NET": ((("sock", "__sk_common"), ("sock_common", "skc_net")), 8),
}
# Members read together, in one copy where the kernel memory is copied: the
# window's -D name -> its members' -D names. (net_device's ifindex and nd_net
# are 1 KB apart on 6.1: read one by one.)
WINDOWS = {  # (a member the kernel has not, or that is not read here, is left out: DP_SKB_NFCT)
    "DP_SKB_WINDOW": ("DP_SKB_HEAD", "DP_SKB_DATA", "DP_SKB_NETWORK_HEADER", "DP_SKB_PROTOCOL", "DP_SKB_END",
                      "DP_SKB_NFCT"),
}
MAX_WINDOW = 128  # bytes read at once onto the program's stack


def kernel_offsets(btf, table=KERNEL_OFFSETS):
    """{-D name: offset} of table (as KERNEL_OFFSETS) in the running kernel; checks the sizes."""
    offsets = {}
    for macro, (path, size) in table.items():
        found = [btf.struct_member(struct_name, member) for struct_name, member in path]
        if found[-1].size != size:
            raise ErrnoError(errno.EOPNOTSUPP, "%s.%s is %d bytes, expected %d" % (
                path[-1][0], path[-1][1], found[-1].size, size))
        offsets[macro] = sum(member.offset for member in found)
    return offsets


def kernel_cflags(btf, with_conntrack=False):
    """-D flags with the running kernel's struct offsets and the windows that
    span the members read together (with the skb's conntrack entry, where
    flows are followed through NAT)."""
    table = dict(KERNEL_OFFSETS, **dict([conntrack.SKB_NFCT])) if with_conntrack else KERNEL_OFFSETS
    offsets = kernel_offsets(btf, table)
    flags = ["-D%s=%d" % pair for pair in offsets.items()]
    for window, macros in WINDOWS.items():
        # 8-aligned, as the structs are: a stack copy of the window keeps each
        # member naturally aligned, which older verifiers demand of stack loads
        spans = [(offsets[m], offsets[m] + table[m][1]) for m in macros if m in offsets]
        start, end = min(a for a, _ in spans) & ~7, max(b for _, b in spans)
        length = (end - start + 7) & ~7
        if length > MAX_WINDOW:
            raise ErrnoError(errno.EOPNOTSUPP, "%s members %d bytes apart" % (window, end - start))
        flags += ["-D%s_START=%d" % (window, start), "-D%s_LEN=%d" % (window, length)]
    return flags


def record_formats():
    """{event: its tracefs format text, or None} of every event a stub reads the record of."""
    return {event: tracefs.event_format(event) for event in RECORDS}


def record_cflags(formats, records=RECORDS):
    """-D flags with record field offsets; formats: {event: format text or None}.
    An event that is missing or lacks a needed field gets none: its stub is not compiled."""
    flags = []
    for event, record in records.items():
        fields = tracefs.parse_fields(formats.get(event) or "")
        if not all(name in fields for name in record.needed):
            continue
        for name in record.needed + record.optional:
            flags.append("-D%s_%s=%d" % (record.prefix, name.upper(), fields.get(name, (-1, 0))[0]))
    return flags


def nat_following(btf):
    """(-D flags to follow flows through NAT, or [], and the hooks' NAT line: a StageHook)."""
    flags, candidate, why_not = conntrack.conntrack_flags(btf, kernel_offsets)
    skipped = () if candidate else ((conntrack.Candidate(conntrack.CONNTRACK, "nf_conn", ""), why_not),)
    return flags, StageHook(conntrack.NAT, candidate, skipped)


def compile_flags(max_flows=DEFAULT_MAX_FLOWS, btf=None, formats=None, direct_read=False, conntrack_flags=(),
                  programs=EVERY_PROGRAM):
    """direct_read: the kernel takes bpf_rdonly_cast (bytecode.rdonly_cast_id);
    conntrack_flags: nat_following's; programs: those of bpf/programs.h to compile."""
    btf = btf or BTF.from_file()
    formats = record_formats() if formats is None else formats
    direct = ["-DDP_DIRECT_READ", "-DDP_KFUNC_PLACEHOLDER=%d" % bytecode.KFUNC_PLACEHOLDER] if direct_read else []
    nats = ["-DDP_MAX_NATS=%d" % max_nats_for(max_flows)] + list(conntrack_flags) if conntrack_flags else []
    return (["-I%s" % BPF_DIR, "-DDP_MAX_FLOWS=%d" % max_flows, "-DDP_MAX_DROPS=%d" % max_drops_for(max_flows),
             "-DDP_MAP_VALUE_PLACEHOLDER=%d" % bytecode.MAP_VALUE_PLACEHOLDER]
            + kernel_cflags(btf, bool(conntrack_flags)) + record_cflags(formats) + direct + nats
            + ["-DDP_WANT_%s" % name for name in sorted(programs)])


def import_bcc():
    try:
        from bcc import BPF  # Debian's python3-bpfcc; never PyPI's "bcc"
    except ImportError as e:
        raise ErrnoError(errno.EOPNOTSUPP, "BCC is not importable (%s): run mount.sh" % e)
    return BPF


def compile_program(source=PROGRAM, max_flows=DEFAULT_MAX_FLOWS, btf=None, formats=None, programs=EVERY_PROGRAM,
                    rdonly_cast=None):
    """The BCC module of source (bpf/drop_packet.c, or a build that includes
    its parts) compiled for this kernel and patched, not loaded yet, with the
    programs named (of bpf/programs.h): (module, why the sk_buff is not read
    directly or None, the NAT hook line). rdonly_cast: bytecode.rdonly_cast_id's
    answer where the caller has it (it loads a probe program)."""
    BPF = import_bcc()
    tracefs.ensure_mounted()
    headers.point_bcc_at_headers()
    btf = btf or BTF.from_file()
    rdonly_cast, why_not = rdonly_cast or bytecode.rdonly_cast_id(btf)
    if why_not:
        log.info("headers are read with bpf_probe_read_kernel: %s", why_not)
    conntrack_flags, nat_hook = nat_following(btf)
    try:
        bpf = BPF(text=with_local_includes(source).encode(), cflags=compile_flags(
            max_flows, btf=btf, formats=formats, direct_read=bool(rdonly_cast), conntrack_flags=conntrack_flags,
            programs=programs))
    except Exception as e:
        raise ErrnoError(errno.EIO, "BPF compile failed: %s" % e)
    try:
        bytecode.patch_module(bpf, rdonly_cast, bpf[b"dp_config"].map_fd)
    except BaseException:
        bpf.cleanup()
        raise
    return bpf, why_not, nat_hook


def with_local_includes(path):
    """The text of a C file with its #include "..." of bpf/ files put in place:
    what BCC compiles. BCC takes only the functions of its main file as
    programs, and bpf/programs.h's serve the product and the benchmark's
    reference builds alike."""
    out = []
    for line in path.read_text().splitlines(keepends=True):
        included = line.startswith('#include "') and BPF_DIR / line.split('"')[1]
        out.append(with_local_includes(included) if included and included.exists() else line)
    return "".join(out)


def generated_source(max_flows=DEFAULT_MAX_FLOWS):
    """What BCC compiles, with the flags an activation here would use: for
    `procfs_fuse bpf-source`."""
    btf = BTF.from_file()
    rdonly_cast, _why_not = bytecode.rdonly_cast_id(btf)
    flags = compile_flags(max_flows, btf=btf, direct_read=bool(rdonly_cast), conntrack_flags=nat_following(btf)[0])
    return "// cflags: %s\n%s" % (" ".join(flags), with_local_includes(PROGRAM))
