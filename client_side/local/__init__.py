"""rdev's records on this laptop: paths, the host registry, the all-or-nothing store, locks, passwords in the keyring, presets."""
