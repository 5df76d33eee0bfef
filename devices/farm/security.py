"""Mutual TLS for multi-host farms: the certificates, and Dask `Security` built from them.

A Dask worker of the farm runs whatever task it is sent, in the process that holds the boards'
ADB and SSH keys, so whoever can talk to the scheduler or a worker owns every board. The farm's
cluster therefore speaks TLS only, both ways: `edgesdk farm certs DIR` makes a CA of the farm's
own and a certificate for the scheduler, the workers and the clients, all signed by it; every
process of the cluster presents its certificate and accepts only peers whose certificate the
farm's CA signed (Dask's `require_encryption`, `CERT_REQUIRED` on both ends). The CA's private
key is not kept: no further certificate can be signed with it, and a new set (a new `farm
certs`) replaces the old one everywhere.

An unauthenticated cluster (plain tcp://, no certificates) is refused unless the caller asks for
it (`--insecure`, `allow_insecure=True`), with a warning.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import stat
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdk.base.errors import EdgeSDKError, UsageError

#: the roles of a farm's cluster, each with a certificate and key in the certificate folder
ROLES = ("scheduler", "worker", "client")
CA_FILE = "ca.pem"


class FarmSecurityError(EdgeSDKError):
    """The farm's cluster would run without authentication, or its certificates are unusable."""


class CertsExistError(FarmSecurityError, UsageError):
    """The certificate folder already holds a farm's certificates and --force was not given
    (a usage error: exit 2; nothing is overwritten)."""


class InsecureFarmWarning(UserWarning):
    """A farm cluster runs without TLS: anyone who reaches it runs code on its workers."""


@dataclass(frozen=True)
class FarmCerts:
    """A farm's certificate folder: `ca.pem`, and `<role>.pem` + `<role>-key.pem` per role."""

    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / CA_FILE

    def cert(self, role: str) -> Path:
        return self.folder / f"{role}.pem"

    def key(self, role: str) -> Path:
        return self.folder / f"{role}-key.pem"

    def check(self, role: str) -> FarmCerts:
        """Raise FarmSecurityError unless the CA and `role`'s certificate and private key are
        there and the key is readable by its owner only."""
        missing = [p for p in (self.ca, self.cert(role), self.key(role)) if not p.is_file()]
        if missing:
            raise FarmSecurityError(
                f"farm certificates in {self.folder}: missing {', '.join(p.name for p in missing)}"
                f" (the {role} needs {CA_FILE}, {role}.pem and {role}-key.pem; make them with "
                "`edgesdk farm certs DIR`)")
        mode = self.key(role).stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise FarmSecurityError(
                f"farm certificates: {self.key(role)} is readable by others (mode "
                f"{stat.S_IMODE(mode):03o}); chmod 600 it")
        return self

    def security(self, role: str) -> Any:
        """A `distributed.Security` for `role`: TLS required, the farm's CA, this role's
        certificate (and any other role's found in the folder)."""
        from distributed.security import Security

        self.check(role)
        kwargs: dict[str, str] = {"tls_ca_file": str(self.ca)}
        for r in ROLES:
            if self.cert(r).is_file() and self.key(r).is_file():
                kwargs[f"tls_{r}_cert"] = str(self.cert(r))
                kwargs[f"tls_{r}_key"] = str(self.key(r))
        return Security(require_encryption=True, **kwargs)


def make_certs(folder: str | os.PathLike[str], *, hosts: Iterable[str] = (), days: int = 365,
               force: bool = False) -> FarmCerts:
    """Make a CA and a certificate per role (scheduler, worker, client) in `folder` (created
    0700; private keys 0600). `hosts` (names or IP addresses) go into the certificates'
    subject alternative names with localhost and the loopback addresses. Refuses to overwrite
    an existing set unless `force`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    certs = FarmCerts(Path(folder))
    existing = [p.name for p in (certs.ca, *(certs.key(r) for r in ROLES)) if p.exists()]
    if existing and not force:
        raise CertsExistError(f"{certs.folder} already holds farm certificates "
                              f"({', '.join(existing)}); pass --force to replace them")
    certs.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    certs.folder.chmod(0o700)

    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=days)
    farm_id = os.urandom(4).hex()
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"edgesdk farm CA {farm_id}")])
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                            key_encipherment=False, data_encipherment=False,
                                            key_agreement=False, key_cert_sign=True,
                                            crl_sign=True, encipher_only=False,
                                            decipher_only=False), critical=True)
               .sign(ca_key, hashes.SHA256()))
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(["localhost", "127.0.0.1", "::1", socket.gethostname(),
                               *hosts]):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    _write(certs.ca, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    for role in ROLES:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                              f"edgesdk farm {role} {farm_id}")])
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(ca_name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(start).not_valid_after(end)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]),
                               critical=False)
                .add_extension(x509.SubjectAlternativeName(names), critical=False)
                .sign(ca_key, hashes.SHA256()))
        _write(certs.key(role), key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()), 0o600)
        _write(certs.cert(role), cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return certs


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write a file created with `mode` (never more open than that, not through a link)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                 mode)
    try:
        os.write(fd, data)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def cluster_security(certs: str | os.PathLike[str] | FarmCerts | None, role: str, *,
                     allow_insecure: bool = False, what: str = "the farm's Dask cluster"
                     ) -> Any:
    """The `distributed.Security` for `role` from the certificate folder; None (plain TCP)
    only when there are no certificates and `allow_insecure` (with a warning); else
    FarmSecurityError."""
    if certs is not None:
        folder = certs if isinstance(certs, FarmCerts) else FarmCerts(Path(certs))
        return folder.security(role)
    if not allow_insecure:
        raise FarmSecurityError(
            f"{what} would run without authentication or encryption: anyone who reaches it "
            "could run code next to the boards' keys. Make certificates with `edgesdk farm "
            "certs DIR` and pass --certs DIR (or `certs = \"DIR\"` in farm.toml's [farm] "
            "table, `certs=` in Python); --insecure (allow_insecure=True) runs it without")
    warnings.warn(f"{what} runs WITHOUT TLS or authentication (--insecure): anyone who can "
                  "reach it can run code on its workers, next to the boards' ADB and SSH keys",
                  InsecureFarmWarning, stacklevel=3)
    return None


def scheduler_address(address: str, *, secure: bool) -> str:
    """`address` with the scheme the cluster speaks: tls:// with certificates (a bare
    host:port or tcp:// is upgraded), tcp:// without (a tls:// address without certificates is
    an error)."""
    scheme, sep, rest = str(address).partition("://")
    if not sep:
        scheme, rest = "", str(address)
    if secure:
        if scheme not in ("", "tcp", "tls"):
            raise FarmSecurityError(f"scheduler address {address}: the farm's cluster speaks "
                                    "tls:// (TLS over TCP)")
        return f"tls://{rest}"
    if scheme == "tls":
        raise FarmSecurityError(f"scheduler address {address} is TLS: give the farm's "
                                "certificates (--certs DIR)")
    return f"{scheme or 'tcp'}://{rest}"
