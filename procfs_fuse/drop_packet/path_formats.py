"""How a flow's text is made: flow by flow (flow_text), or as one format
shared by every flow with the same hops, nonzero counts and drop site,
filled in for all of them at once (PathFormat). flow_texts.py says which
flows are made, and when."""
from itertools import chain, repeat
from operator import add, ge, itemgetter

from .diagnosis import by_count, cause_text, hop_text, last_full_stage, picker, shown_hops, unnamed, verdict
from .stages import TABLE

_HOP, _COUNTS = itemgetter(0), itemgetter(1)  # of a (Hop, counts)
_FIRST_HOP, _SECOND_HOP = itemgetter(0), itemgetter(1)  # of a flow's hops


def _hops_template(path, hop_line):
    """path: ((Hop, Look, its drop sites in order), ...) -> the `%` template of
    those hops' lines: a hop's line, its stages through DROPPED, a line per
    drop site, its stages after."""
    lines = []
    for hop, look, sites in path:
        lines.append(hop_line(hop).replace("%", "%%"))
        if look.head:
            lines.append(look.head)
        lines += [("            %s: " % reason).replace("%", "%%") + "%d at " + location.replace("%", "%%")
                  for reason, location in sites]
        if look.tail:
            lines.append(look.tail)
    return "\n".join(lines)


def flow_text(header, hops, drops_of_flow, hop_line, shape, verdict_of, templates):
    """hops: ((Hop, counts), ...) in path order; drops_of_flow: {Hop: {(reason, location): n}} or None;
    hop_line(hop): its `    hop: ...` line; verdict_of(shown, drops_of_flow): the verdict line;
    templates: {((Hop, Look, drop sites) of each hop): _hops_template}, one per render."""
    shown = shown_hops(shape, hops, drops_of_flow)
    sites = tuple(tuple(site for site, _n in by_count(drops_of_flow[hop])) if hop in drops_of_flow else ()
                  for hop, _counts, _look in shown) if drops_of_flow else ((),) * len(shown)
    path = tuple((hop, look, hop_sites) for (hop, _counts, look), hop_sites in zip(shown, sites))
    made = templates.get(path)
    if made is None:
        made = templates[path] = _hops_template(path, hop_line)
    values = ()
    for (hop, counts, look), hop_sites in zip(shown, sites):
        values += look.head_pick(counts)
        if hop_sites:
            drops = drops_of_flow[hop]
            values += tuple(drops[site] for site in hop_sites)
        values += look.tail_pick(counts)
    return header + "\n" + made % values + "\n    verdict: " + verdict_of(shown, drops_of_flow)


def may_hold_evicted(shown, drops_evicted):
    """A DROPPED count shows where the drops table evicted: some of it may be drops it no longer holds."""
    return drops_evicted and any(look.shows_dropped for _hop, _counts, look in shown)


class PathFormat:
    """The text of every flow with the same kind, hops, nonzero counts and drop
    site (one at one of its hops, or none), made once and formatted with each
    flow's numbers: what flow_text would make of them, in a fraction of its time
    (a `cat` of 10,000 changed flows). Flows with more sites or hops only their
    drops name, or drop counts the drops table may have evicted, take flow_text.
    It reads a flow's counts laid end to end, hop after hop (flat_counts), then its drop count."""

    @classmethod
    def of(cls, flow_hops, drops_of_flow, shape, hop_line, names, drops_traced, drops_evicted):
        """A PathFormat for flows like this one, or None where flow_text must do it."""
        at, site = None, None
        if drops_of_flow:
            if len(drops_of_flow) > 1:
                return None
            (at, sites), = drops_of_flow.items()
            if len(sites) > 1:
                return None
            (site, _n), = sites.items()
        if site and not drops_traced:  # drops kept from an activation that traced them
            return None
        shown = shown_hops(shape, flow_hops, drops_of_flow)
        if len(shown) > len(flow_hops):  # a hop only the drops name
            return None
        if may_hold_evicted(shown, drops_evicted):
            return None
        return cls(shown, at, site, hop_line, names, drops_traced, flat_counts(flow_hops))

    def __init__(self, shown, at, site, hop_line, names, drops_traced, counts):
        """counts: flat_counts of a flow of this format: which are nonzero is the format's."""
        body = "%s\n" + _hops_template([(hop, look, (site,) if hop == at else ()) for hop, _counts, look in shown],
                                       hop_line) + "\n    verdict: "
        width, drop_count = len(TABLE), len(TABLE) * len(shown)  # where a hop's counts start; the drop count
        shown_ids = []
        for n, (hop, _counts, look) in enumerate(shown):
            shown_ids += [n * width + i for i in look.head_ids] + [drop_count] * (hop == at)
            shown_ids += [n * width + i for i in look.tail_ids]
        self._pick = picker(shown_ids)
        self._site, self._at = site, at
        if site is None:
            self._variants = (body + verdict([], drops_traced).replace("%", "%%"),)
            return
        index = [n for n, (hop, _counts, _look) in enumerate(shown) if hop == at][0]
        look = shown[index][2]
        # "sent": the most any path stage of the first hop saw; of the nonzero ones (zeros cannot be it)
        self._sent_ids = [i for i in shown[0][2].path_ids if counts[i]]
        # the verdict's "after": the last path stage of the drop's hop that saw the most (diagnosis.last_full_stage)
        self._at_path = picker([index * width + i for i in look.path_ids])
        self._full_candidates = [(n, index * width + i) for n, i in enumerate(look.path_ids)
                                 if counts[index * width + i]]
        # by the last stage there that saw them all: one text per stage, the last without "after"
        lost_in = "%%d of %%d lost in %s" % hop_text(names.get(at) or unnamed(at)).replace("%", "%%")
        cause = ": " + cause_text(site, 0).replace("%", "%%")
        self._variants = tuple(body + lost_in + ", after %s" % name + cause for name in look.path_names) + (
            body + lost_in + cause,)

    def texts(self, headers, counts, drops):
        """The texts of flows of this format (their headers, flat_counts and
        drops by hop), each part in C: map over all of them at once."""
        if self._site is None:
            return list(map(self._variants[0].__mod__, map(add, zip(headers), map(self._pick, counts))))
        dropped = list(map(itemgetter(self._site), map(itemgetter(self._at), drops)))
        counts = list(map(add, counts, zip(dropped)))  # the drop count last, where _pick expects it
        sent = (map(max, map(itemgetter(*self._sent_ids), counts)) if len(self._sent_ids) > 1 else
                map(itemgetter(*self._sent_ids), counts) if self._sent_ids else repeat(0))
        values = map(add, map(add, zip(headers), map(self._pick, counts)), zip(dropped, map(max, sent, dropped)))
        candidates = self._full_candidates
        if len(candidates) < 2:  # the same "after" for all: the one nonzero stage, or none (-1: no "after")
            return list(map(self._variants[candidates[0][0] if candidates else -1].__mod__, values))
        if len(candidates) == 2:  # the later one where it saw at least as many
            (earlier, at_earlier), (later, at_later) = candidates
            templates = map((self._variants[earlier], self._variants[later]).__getitem__,
                            map(ge, map(itemgetter(at_later), counts), map(itemgetter(at_earlier), counts)))
        else:
            templates = map(self._variants.__getitem__, map(last_full_stage, map(self._at_path, counts)))
        return list(map(str.__mod__, templates, values))


def flat_counts_of(paths, hop_count):
    """flat_counts of each of paths, flows of hop_count hops each: in C."""
    if hop_count == 1:
        return list(map(_COUNTS, map(_FIRST_HOP, paths)))
    if hop_count == 2:
        return list(map(add, map(_COUNTS, map(_FIRST_HOP, paths)), map(_COUNTS, map(_SECOND_HOP, paths))))
    return list(map(flat_counts, paths))


def flat_counts(hops):
    """The counts of a flow's hops ((Hop, counts), ...) laid end to end."""
    if len(hops) == 2:  # most flows of a host with containers: no chain to make
        return hops[0][1] + hops[1][1]
    return hops[0][1] if len(hops) == 1 else tuple(chain.from_iterable(map(_COUNTS, hops)))
