"""Format version 5: collections of small images sharing one set of networks (docs/collections.md)."""
