"""The entry's commands and state: what a write does, what a read reads."""
