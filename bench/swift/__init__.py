"""OpenStack Swift, all-in-one on loopback, as the yardstick of the ringstore benchmark."""
