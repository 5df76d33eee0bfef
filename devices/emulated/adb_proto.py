"""The ADB wire protocol, device side: message framing, the sync sub-protocol's records, and
RSA authentication (Android's public-key format and PKCS#1 v1.5 signatures over the token).

Written from AOSP's protocol description (protocol.txt, SYNC.TXT, SERVICES.TXT):

* A message is a 24-byte little-endian header — command, arg0, arg1, payload length, payload
  checksum (the byte sum), magic (command XOR 0xffffffff) — then the payload.
* Authentication: the device sends AUTH(TOKEN, 0, 20 random bytes); the host answers
  AUTH(SIGNATURE, 0, sig) where sig is an RSA PKCS#1 v1.5 signature that treats the token as a
  SHA-1 digest. If no key the device trusts verifies it, the host may send
  AUTH(RSAPUBLICKEY, 0, key) and the phone asks its user.
* The public key is base64 of Android's `RSAPublicKey` struct (word count, n0inv, modulus and
  R^2 mod n as little-endian 32-bit words, exponent), then " user@host".
"""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass

A_SYNC = 0x434E5953
A_CNXN = 0x4E584E43
A_AUTH = 0x48545541
A_OPEN = 0x4E45504F
A_OKAY = 0x59414B4F
A_CLSE = 0x45534C43
A_WRTE = 0x45545257
A_STLS = 0x534C5453

COMMAND_NAMES = {A_SYNC: "SYNC", A_CNXN: "CNXN", A_AUTH: "AUTH", A_OPEN: "OPEN", A_OKAY: "OKAY",
                 A_CLSE: "CLSE", A_WRTE: "WRTE", A_STLS: "STLS"}

#: The version we speak; from 0x01000001 on, peers may skip the payload checksum.
VERSION = 0x01000001
VERSION_MIN = 0x01000000
MAX_PAYLOAD = 256 * 1024
#: Before CNXN, payloads are limited to what the oldest peers accept.
MAX_PAYLOAD_LEGACY = 4096

AUTH_TOKEN = 1
AUTH_SIGNATURE = 2
AUTH_RSAPUBLICKEY = 3
TOKEN_SIZE = 20

#: sync: requests and responses
SYNC_DATA_MAX = 64 * 1024

HEADER = struct.Struct("<6I")


class ProtocolError(Exception):
    """The peer sent something that breaks the protocol: the connection must be closed."""


@dataclass(frozen=True)
class Message:
    command: int
    arg0: int
    arg1: int
    payload: bytes = b""

    @property
    def name(self) -> str:
        return COMMAND_NAMES.get(self.command, f"0x{self.command:08x}")

    def pack(self) -> bytes:
        return HEADER.pack(self.command, self.arg0 & 0xFFFFFFFF, self.arg1 & 0xFFFFFFFF,
                           len(self.payload), checksum(self.payload),
                           self.command ^ 0xFFFFFFFF) + self.payload


def checksum(payload: bytes) -> int:
    """The legacy payload check: the sum of the bytes (not a CRC, whatever the name says)."""
    return sum(payload) & 0xFFFFFFFF


def parse_header(header: bytes) -> tuple[int, int, int, int, int]:
    """(command, arg0, arg1, length, checksum) of a 24-byte header; ProtocolError when bad."""
    command, arg0, arg1, length, check, magic = HEADER.unpack(header)
    if magic != command ^ 0xFFFFFFFF:
        raise ProtocolError(f"bad magic 0x{magic:08x} for command 0x{command:08x}")
    if command not in COMMAND_NAMES:
        raise ProtocolError(f"unknown command 0x{command:08x}")
    if length > MAX_PAYLOAD * 4:
        raise ProtocolError(f"payload of {length} bytes is larger than any peer may send")
    return command, arg0, arg1, length, check


# ---------------------------------------------------------------------------- RSA keys
#: DER prefix of a PKCS#1 DigestInfo for SHA-1 (AlgorithmIdentifier sha1 + OCTET STRING of 20)
_SHA1_DIGEST_INFO = bytes.fromhex("3021300906052b0e03021a05000414")


@dataclass(frozen=True)
class AdbPublicKey:
    """An RSA public key in Android's ADB format."""

    modulus: int
    exponent: int
    comment: str = ""
    text: str = ""          #: the key as the host sent it ("base64 user@host")

    @property
    def bits(self) -> int:
        return self.modulus.bit_length()

    @property
    def fingerprint(self) -> str:
        """SHA256:BASE64 of the key struct (OpenSSH's style), to name a key in messages."""
        blob = base64.b64decode(encode_adb_public_key(self.modulus, self.exponent))
        digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
        return f"SHA256:{digest}"

    def verify(self, token: bytes, signature: bytes) -> bool:
        """True when `signature` is the PKCS#1 v1.5 signature of `token` (taken as a SHA-1
        digest) under this key."""
        size = (self.modulus.bit_length() + 7) // 8
        if len(signature) != size:
            return False
        value = int.from_bytes(signature, "big")
        if value >= self.modulus:
            return False
        block = pow(value, self.exponent, self.modulus).to_bytes(size, "big")
        payload = _SHA1_DIGEST_INFO + token
        padding = size - len(payload) - 3
        if padding < 8:
            return False
        expected = b"\x00\x01" + b"\xff" * padding + b"\x00" + payload
        return block == expected


def parse_adb_public_key(text: str | bytes) -> AdbPublicKey:
    """Parse "BASE64[ comment]" (the adbkey.pub / AUTH RSAPUBLICKEY payload)."""
    if isinstance(text, bytes):
        text = text.rstrip(b"\x00").decode("ascii", "replace")
    text = text.strip()
    encoded, _, comment = text.partition(" ")
    try:
        blob = base64.b64decode(encoded, validate=True)
    except ValueError as exc:
        raise ProtocolError(f"public key is not base64: {exc}") from None
    if len(blob) < 12:
        raise ProtocolError(f"public key is {len(blob)} bytes, too short")
    (words,) = struct.unpack_from("<I", blob, 0)
    expected = 4 + 4 + words * 4 * 2 + 4
    if words == 0 or words > 1024 or len(blob) != expected:
        raise ProtocolError(f"public key struct of {len(blob)} bytes does not hold a "
                            f"{words}-word modulus (expected {expected} bytes)")
    modulus = int.from_bytes(blob[8:8 + words * 4], "little")
    (exponent,) = struct.unpack_from("<I", blob, 8 + words * 8)
    if modulus < 3 or exponent < 3:
        raise ProtocolError("public key has an invalid modulus or exponent")
    return AdbPublicKey(modulus, exponent, comment.strip(), text)


def encode_adb_public_key(modulus: int, exponent: int = 65537, comment: str = "") -> str:
    """The Android ADB public-key text for (n, e) — what `parse_adb_public_key` reads."""
    words = (modulus.bit_length() + 31) // 32
    n0inv = (-pow(modulus, -1, 1 << 32)) & 0xFFFFFFFF
    rr = pow(2, words * 32 * 2, modulus)
    blob = (struct.pack("<II", words, n0inv) + modulus.to_bytes(words * 4, "little")
            + rr.to_bytes(words * 4, "little") + struct.pack("<I", exponent))
    return base64.b64encode(blob).decode() + (f" {comment}" if comment else "")
