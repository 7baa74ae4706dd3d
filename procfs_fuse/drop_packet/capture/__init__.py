"""The kernel side: the stage table, the hook plan, the BPF program compiled
and attached, its filters, and its tables read into a Snapshot."""
