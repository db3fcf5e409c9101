"""The kinds of host rdev connects to, each preparing its own way, and the one pipeline they all go through."""
