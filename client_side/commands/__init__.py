"""One module per `rdev` command that is more than a call."""
