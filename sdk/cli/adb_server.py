"""The phones a running adb server sees (`adb devices -l`), asked over its socket protocol.

The adb client and server talk over TCP (127.0.0.1:5037, or $ANDROID_ADB_SERVER_ADDRESS /
$ANDROID_ADB_SERVER_PORT): the client sends a 4-hex-digit length and a request
("host:devices-l"); the server answers "OKAY", a 4-hex-digit length and the listing, or "FAIL"
and a message. Asking this way needs no `adb` binary and never starts a server: with none
running, the list is empty and the reason says so.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

DEFAULT_PORT = 5037
TIMEOUT_S = 2.0


@dataclass(frozen=True)
class ServerDevice:
    """One line of `adb devices -l`."""

    serial: str
    #: "device" (ready), "unauthorized", "offline", "recovery", ...
    state: str
    #: product, model, device, transport_id ...
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def networked(self) -> bool:
        """Connected with `adb connect HOST:PORT` (or mDNS), not on USB."""
        host, sep, port = self.serial.rpartition(":")
        return bool(sep and host and port.isdigit()) or "._adb-tls-" in self.serial

    @property
    def device_string(self) -> str:
        """How edgesdk names it: adb:tcp:HOST:PORT for networked phones, adb:SERIAL on USB."""
        return f"adb:tcp:{self.serial}" if self.networked else f"adb:{self.serial}"


@dataclass(frozen=True)
class ServerListing:
    address: str
    devices: tuple[ServerDevice, ...]
    #: why the list is empty without it being the server's answer (no server running ...)
    unavailable: str | None = None


def server_address() -> tuple[str, int]:
    host = os.environ.get("ANDROID_ADB_SERVER_ADDRESS") or "127.0.0.1"
    port = int(os.environ.get("ANDROID_ADB_SERVER_PORT") or DEFAULT_PORT)
    return host, port


def parse_devices_l(text: str) -> tuple[ServerDevice, ...]:
    """The server's answer to host:devices-l ("SERIAL  STATE key:value ..." per line)."""
    found = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        props = dict(p.split(":", 1) for p in parts[2:] if ":" in p)
        found.append(ServerDevice(parts[0], parts[1], props))
    return tuple(found)


def _read_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError(f"the adb server closed the connection after {len(data)} of "
                                  f"{n} bytes")
        data += chunk
    return data


def list_server_devices(timeout: float = TIMEOUT_S) -> ServerListing:
    """What the adb server sees; an empty listing with the reason when no server answers."""
    host, port = server_address()
    address = f"{host}:{port}"
    request = b"host:devices-l"
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"%04x" % len(request) + request)
            status = _read_exact(sock, 4)
            length = int(_read_exact(sock, 4), 16)
            body = _read_exact(sock, length).decode(errors="replace")
    except ConnectionRefusedError:
        return ServerListing(address, (), f"no adb server on {address}")
    except (OSError, ValueError) as exc:
        return ServerListing(address, (), f"the adb server on {address} did not answer: {exc}")
    if status != b"OKAY":
        return ServerListing(address, (), f"the adb server on {address} refused "
                                          f"host:devices-l: {body}")
    return ServerListing(address, parse_devices_l(body))
