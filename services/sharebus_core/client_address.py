"""What an anonymous caller is counted by, the same in every service that limits one (gateway, portal)."""

from __future__ import annotations

import ipaddress


def client_bucket(address: str) -> str:
    """Its IPv4 address, or its IPv6 /64: one subscriber's network hands out addresses from a /64, so a
    limit counted per single IPv6 address would let one host rotating its address through it go unlimited.
    An IPv4 address mapped into IPv6 counts as itself; anything that is not an address, as it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
