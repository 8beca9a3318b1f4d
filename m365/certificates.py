"""Certificate credentials of an application connection: the admin gives
the public certificate registered on the app and its private key (PEM); they
are checked to belong together before anything is stored, so a wrong pair is
a clear 422 now rather than a broken connection later.  cryptography's
X.509 side (15 MiB) is imported when a certificate is checked, not at start."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography import x509


class CertificateError(ValueError):
    """The certificate or the key is unreadable, or they do not match."""


def thumbprint(certificate: str) -> str:
    """The certificate's SHA-256 thumbprint in hex (what Entra shows, and
    what msal sends as ``x5t#S256``)."""
    from cryptography.hazmat.primitives import hashes

    return _load(certificate).fingerprint(hashes.SHA256()).hex()


def check_pair(certificate: str, private_key: str) -> str:
    """The thumbprint, once the RSA key is shown to be the certificate's."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    cert = _load(certificate)
    try:
        key = serialization.load_pem_private_key(private_key.encode(), password=None)
    except (ValueError, TypeError):
        raise CertificateError("private_key is not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CertificateError("private_key must be an RSA key (Entra signs with RS/PS256)")
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if key.public_key().public_bytes(der, public) != cert.public_key().public_bytes(der, public):
        raise CertificateError("private_key is not the key of this certificate")
    return cert.fingerprint(hashes.SHA256()).hex()


def _load(certificate: str) -> x509.Certificate:
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificate(certificate.encode())
    except ValueError:
        raise CertificateError("certificate is not a PEM X.509 certificate") from None
