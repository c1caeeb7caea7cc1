"""asmr: image compression with Activation-Sharing Multi-Resolution coordinate networks."""

__version__ = "0.1.0"
