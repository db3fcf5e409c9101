"""SSH as rdev speaks it: the config it owns, pinned host keys, its key pair, probes with the real ssh, paramiko logins, and the runtime side shipped to hosts."""
