"""
Issue the certificates and keys for a throwaway control plane.

Every start gets a fresh PKI, so no key outlives the cluster it was made for
and nothing secret is ever committed. Keys are EC P-256: generating one takes
microseconds, where RSA-2048 takes tens of milliseconds per certificate.

The CA carries critical basicConstraints and keyUsage plus subject and
authority key identifiers, because strict X.509 verification (Python 3.13+
and Go's verifier) rejects a CA without them.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Long enough for any test session or demo, short enough that a leaked
# certificate is worthless soon after.
CERTIFICATE_LIFETIME = datetime.timedelta(days=2)

# NB: backdated so a certificate is valid at once even if a component's clock
# reads a little behind ours.
CLOCK_SKEW_ALLOWANCE = datetime.timedelta(minutes=5)


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, both PEM-encoded."""

    cert_pem: bytes
    key_pem: bytes


def generate_private_key() -> ec.EllipticCurvePrivateKey:
    """Generate an EC P-256 private key."""
    return ec.generate_private_key(ec.SECP256R1())


def encode_private_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    """Encode a private key as unencrypted PKCS#8 PEM, which every component reads."""
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class ServiceAccountKey:
    """The service-account token signing key, PEM-encoded."""

    private_pem: bytes
    public_pem: bytes


def generate_service_account_key() -> ServiceAccountKey:
    """
    Generate the service-account token signing key and its public half.

    NB: kube-apiserver's --service-account-key-file does not read a PKCS#8
    private key ("data does not contain any valid RSA or ECDSA public keys"),
    so the public key gets its own file.
    """
    key = generate_private_key()
    public_pem = key.public_key().public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    return ServiceAccountKey(private_pem=encode_private_key(key), public_pem=public_pem)


class CertificateAuthority:
    """A self-signed CA that issues serving and client certificates."""

    def __init__(
        self, *, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate
    ) -> None:
        self._key = key
        self._certificate = certificate

    @classmethod
    def create(cls, *, common_name: str = "event-collector-ca") -> CertificateAuthority:
        """Create a new CA with a fresh key."""
        key = generate_private_key()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        public_key = key.public_key()
        builder = (
            _validity(x509.CertificateBuilder())
            .subject_name(name)
            .issuer_name(name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key),
                critical=False,
            )
        )
        return cls(key=key, certificate=builder.sign(key, hashes.SHA256()))

    @property
    def cert_pem(self) -> bytes:
        """Return the CA certificate as PEM."""
        return self._certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        """Return the CA private key as PEM (the controller-manager signs CSRs)."""
        return encode_private_key(self._key)

    def issue_serving(
        self,
        *,
        common_name: str = "kube-apiserver",
        ip_addresses: Sequence[str] = ("127.0.0.1",),
        dns_names: Sequence[str] = ("localhost",),
    ) -> KeyPair:
        """Issue a TLS server certificate for the given addresses."""
        names: list[x509.GeneralName] = [
            x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses
        ]
        names.extend(x509.DNSName(dns) for dns in dns_names)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        return self._issue(
            subject=subject,
            usage=ExtendedKeyUsageOID.SERVER_AUTH,
            san=x509.SubjectAlternativeName(names),
        )

    def issue_client(self, *, user: str, groups: Sequence[str] = ()) -> KeyPair:
        """
        Issue a client certificate for a Kubernetes user.

        kube-apiserver takes the user name from CN and one group from each O.
        """
        attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, user))
        return self._issue(
            subject=x509.Name(attributes), usage=ExtendedKeyUsageOID.CLIENT_AUTH
        )

    def _issue(
        self,
        *,
        subject: x509.Name,
        usage: x509.ObjectIdentifier,
        san: x509.SubjectAlternativeName | None = None,
    ) -> KeyPair:
        key = generate_private_key()
        builder = (
            _validity(x509.CertificateBuilder())
            .subject_name(subject)
            .issuer_name(self._certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self._key.public_key()
                ),
                critical=False,
            )
        )
        if san is not None:
            builder = builder.add_extension(san, critical=False)
        certificate = builder.sign(self._key, hashes.SHA256())
        return KeyPair(
            cert_pem=certificate.public_bytes(serialization.Encoding.PEM),
            key_pem=encode_private_key(key),
        )


def write_secret_file(path: Path, data: bytes) -> None:
    """
    Write a file readable only by its owner.

    The mode is set at creation, so the key is never briefly world-readable.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as stream:
        os.fchmod(stream.fileno(), 0o600)
        stream.write(data)


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return builder.not_valid_before(now - CLOCK_SKEW_ALLOWANCE).not_valid_after(
        now + CERTIFICATE_LIFETIME
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    # A CA only signs; a leaf needs digitalSignature for ECDHE handshakes.
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
