"""Drop-reason names, from the running kernel: never a table of ours."""
from ...kernel import tracefs
from ...kernel.btf import BTFError

BTF_PREFIX = "SKB_DROP_REASON_"

# What a drop is called on kernels whose kfree_skb has no reason field (before 5.17).
NO_REASON = "NO_REASON_BEFORE_5.17"


def reason_names(kfree_skb_format=None, btf=None):
    """{number: name} of the running kernel's drop reasons: from the kfree_skb
    event's print format, else from the BTF enum skb_drop_reason."""
    if kfree_skb_format:
        if "reason" not in tracefs.parse_fields(kfree_skb_format):
            return {0: NO_REASON}
        names = tracefs.parse_symbolic(kfree_skb_format, "reason")
        if names:
            return names
    if btf is not None:
        try:
            values = btf.enum("skb_drop_reason")
        except BTFError:
            return {}
        return {v: k[len(BTF_PREFIX):] for k, v in values.items() if k.startswith(BTF_PREFIX)}
    return {}


def reason_name(names, number):
    return names.get(number, "REASON_%d" % number)
