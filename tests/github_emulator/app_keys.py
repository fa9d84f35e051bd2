"""A GitHub App's RSA key pair for the emulator's App auth: the App signs its JWT with the private
key, the emulator (`Emulator(app_public_key=...)`) checks it with the public one."""

from __future__ import annotations


def app_key_pair() -> tuple[str, str]:
    """A fresh 2048-bit RSA key pair: (PEM PKCS#8 private key, PEM SubjectPublicKeyInfo public key)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public
