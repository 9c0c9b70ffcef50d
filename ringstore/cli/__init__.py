"""The ``ringstore`` command."""
