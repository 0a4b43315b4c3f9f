"""p2p: image-to-image translation with conditional adversarial networks."""

from p2pcore.errors import P2PError
from p2pcore.plugins import Host, load_host

__all__ = ["Host", "P2PError", "load_host"]
__version__ = "0.1.0"
