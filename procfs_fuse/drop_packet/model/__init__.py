"""One Reading of a Snapshot: flows, their hops and stage counts, drops,
verdicts, and what user space knows of the hops (names, device counters)."""
