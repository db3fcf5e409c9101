"""The laptop side: the `rdev` command, its SSH config, keys, known hosts, probes and editor launch."""
