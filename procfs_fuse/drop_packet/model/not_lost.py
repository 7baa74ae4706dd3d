"""Drops that are not loss: a packet the kernel freed because it was never
for this host (multicast or broadcast nobody here joined, a frame for
another host's address), or freed once more after its segments were counted
(a GSO packet tbf cut up; the sk_buffs a merged packet carried). Every view
counts them, with their reason, and keeps them apart from loss. Decided by
the reason, the flow's destination and the function of the location."""
import ipaddress

BROADCAST = ipaddress.IPv4Address("255.255.255.255")
# reason -> why, whatever the destination or the place
BY_REASON = {"OTHERHOST": "a frame for another host's address"}
# (reason, function) -> why: places where a kernel frees what it counted already
CUT_UP = "tbf cut this GSO packet into segments and dropped them all: counted as their drops"
BY_PLACE = {
    ("NOT_SPECIFIED", "tbf_enqueue"): CUT_UP,  # tbf_segment inlined
    ("NOT_SPECIFIED", "tbf_segment"): CUT_UP,
    # 6.1 frees a consumed packet's frag_list with kfree_skb (later kernels consume it)
    ("NOT_SPECIFIED", "skb_release_data"): "the sk_buffs a merged packet carried, freed once their data was taken",
}


GROUP_REASON = "NOT_SPECIFIED"  # what a kernel gives multicast nobody joined (ip6_mc_input)
MAY_BE_SPARED = {*BY_REASON, *(reason for reason, _function in BY_PLACE), GROUP_REASON}


def why_not_lost(reason, location, dest):
    """Why a drop site of a flow to dest (None: unattributed) is not loss, or None where it is."""
    if reason not in MAY_BE_SPARED:  # most drops: a reading asks for each of them
        return None
    why = BY_REASON.get(reason) or BY_PLACE.get((reason, location.split("+", 1)[0]))
    if why is None and reason == GROUP_REASON and dest is not None and (dest.is_multicast or dest == BROADCAST):
        why = "%s to %s, no listener here joined the group" % (
            "multicast" if dest.is_multicast else "broadcast", dest)
    return why
