"""The bus's own certificate authority and the broker's certificates, made once under the data dir.

- ``ca.pem``: the CA certificate every client trusts (``SHAREBUS_KAFKA_CA_FILE``);
- ``broker.p12``: the broker's key and certificate (names: localhost and the broker's host), used
  by the SASL_SSL client listener and, as a client certificate, on the controller listener;
- ``ca.key.pem``: the CA's private key, kept (0600) so a certificate for a new host can be signed.

The controller listener takes only this certificate (mutual TLS), so it stays internal to the broker.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

BROKER_CN = "sharebus-broker"
_VALID_DAYS = 3650


@dataclass(frozen=True)
class BrokerTls:
    ca_file: Path
    keystore: Path
    keystore_password: str

    @property
    def broker_principal(self) -> str:
        """The principal Kafka derives from the broker's certificate (the default mapping: the DN)."""
        return f"User:CN={BROKER_CN}"


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sharebus"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ca(now: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("sharebus local CA")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _broker_cert(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, hosts: list[str], now: dt.datetime
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, BROKER_CN)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=_VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def ensure_broker_tls(directory: Path, hosts: list[str]) -> BrokerTls:
    """The CA and the broker's keystore in ``directory``, made on first call and reused after."""
    ca_file, ca_key_file = directory / "ca.pem", directory / "ca.key.pem"
    keystore, password_file = directory / "broker.p12", directory / "broker.p12.password"
    if ca_file.is_file() and keystore.is_file() and password_file.is_file():
        return BrokerTls(ca_file, keystore, password_file.read_text().strip())
    now = dt.datetime.now(dt.UTC)
    ca_key, ca_cert = _ca(now)
    key, cert = _broker_cert(ca_key, ca_cert, hosts, now)
    password = secrets.token_urlsafe(24)
    # Triple-DES/SHA-1 PKCS#12 is the encryption every JDK's keystore reader accepts; the file is 0600.
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(50000)
        .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
        .hmac_hash(hashes.SHA1())  # noqa: S303 - the PKCS#12 MAC the JDK reads; the key is protected by the password
        .build(password.encode())
    )
    _write_private(
        ca_key_file,
        ca_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    _write_private(keystore, pkcs12.serialize_key_and_certificates(b"broker", key, cert, [ca_cert], encryption))
    _write_private(password_file, password.encode())
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    return BrokerTls(ca_file, keystore, password)


__all__ = ["BROKER_CN", "BrokerTls", "ensure_broker_tls"]
