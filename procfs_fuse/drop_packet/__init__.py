"""drop-packet, in four concerns whose imports run one way:
control (commands, state) -> views (text, JSON, Prometheus) -> model (the
Reading: flows, hops, verdicts, names, devices) -> capture (the kernel side:
stages, hooks, the BPF program, its tables)."""
