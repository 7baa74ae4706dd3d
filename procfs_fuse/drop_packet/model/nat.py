"""A flow's translations (NAT) as a person reads them: where on its path each
goes, what it changed, and the words a verdict adds for hops after it. Pure."""


def endpoint(flow, source):
    """"198.18.99.1:80", "[2001:2::1]:80", or the address alone for a flow without ports."""
    address, port = (flow.source, flow.sport) if source else (flow.dest, flow.dport)
    if not flow.has_ports:
        return address
    return ("[%s]:%d" if ":" in address else "%s:%d") % (address, port)


def changes(translation):
    """"dest A -> B, source C -> D": what the translation changed, dest first."""
    parts = []
    for word, source in (("dest", False), ("source", True)):
        before, after = endpoint(translation.flow, source), endpoint(translation.to, source)
        if before != after:
            parts.append("%s %s -> %s" % (word, before, after))
    return ", ".join(parts)


def after_words(sent, translated):
    """What a verdict adds to a hop that sees the flow sent as `sent` as
    `translated` (after one translation or several): where it went, or came from."""
    if endpoint(sent, False) != endpoint(translated, False):
        return "after NAT to " + endpoint(translated, False)
    return "after NAT from " + endpoint(translated, True)


def placed(hops, translations):
    """((index, Translation), ...): each translation before the hop where it
    was first seen translated (index in hops), or after the last hop where
    that hop is not among them; in path order."""
    index_of = {hop: n for n, (hop, _counts) in enumerate(hops)}
    return tuple(sorted(((index_of.get(t.hop, len(hops)), t) for t in translations), key=lambda pair: pair[0]))


def after_nat(hops, at):
    """{Hop: after_words} of the hops at or after a translation (placed()'s
    `at`): the flow as sent (the first translation's from) against the
    latest translation before each."""
    words, last, translations = {}, None, iter(at)
    upcoming = next(translations, None)
    for n, (hop, _counts) in enumerate(hops):
        while upcoming is not None and upcoming[0] <= n:
            last, upcoming = upcoming[1], next(translations, None)
        if last is not None:
            words[hop] = after_words(at[0][1].flow, last.to)
    return words
