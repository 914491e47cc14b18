"""The tests' offline rule, in one place: a socket may connect to this machine only.

Any connection that would leave the machine fails at once with an OSError naming the address, so a stray
call to a model hub or an analytics server shows up as a failure, not as a slow or flaky test. The pytest
process installs it through the `no_network` fixture (tests/conftest.py); every process the tests start
(the app, the CLI, `python -c ...`) installs it at start-up through `sitecustomize.py` in this folder, which
the tests put on PYTHONPATH. Standard library only.
"""

from __future__ import annotations

import errno
import ipaddress
import socket

MESSAGE = "network access blocked in tests"


def is_local_address(family: int, address) -> bool:
    """True for a Unix socket or a loopback / unspecified IP address; a host name other than localhost is
    not local (connecting to it would mean a DNS look-up and a trip off this machine)."""
    if family == getattr(socket, "AF_UNIX", None) or not isinstance(address, tuple):
        return True
    host = address[0]
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


def refuse(sock, address) -> None:
    if not is_local_address(sock.family, address):
        raise OSError(errno.ENETUNREACH, f"{MESSAGE}: {address!r}")


def guarded(real_connect, real_connect_ex):
    """connect / connect_ex replacements that refuse non-local addresses, then call the real ones."""

    def connect(sock, address):
        refuse(sock, address)
        return real_connect(sock, address)

    def connect_ex(sock, address):
        refuse(sock, address)
        return real_connect_ex(sock, address)

    return connect, connect_ex


def install() -> None:
    """Guard socket.socket for the rest of this process (idempotent)."""
    if getattr(socket.socket.connect, "_offline_guard", False):
        return
    connect, connect_ex = guarded(socket.socket.connect, socket.socket.connect_ex)
    connect._offline_guard = connect_ex._offline_guard = True
    socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
