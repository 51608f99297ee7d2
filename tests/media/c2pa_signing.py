"""Signing test images with C2PA: a CA and signer certificate made here with `cryptography`, and
c2pa-python's Builder. Shared by the provenance tests and the scan tests."""

from __future__ import annotations

import datetime
import io
from pathlib import Path

from PIL import Image

TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def signing_certificates() -> tuple[bytes, bytes]:
    """A test CA and a signing certificate it issued (C2PA refuses a self-signed signer): the chain PEM
    and the signer's private key PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dfdetect tests")])

    def usage(signing: bool) -> x509.KeyUsage:
        return x509.KeyUsage(digital_signature=signing, content_commitment=False, key_encipherment=False,
                             data_encipherment=False, key_agreement=False, key_cert_sign=not signing,
                             crl_sign=not signing, encipher_only=False, decipher_only=False)

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def certificate(subject: str, issuer: x509.Name, public_key, signing: bool) -> x509.CertificateBuilder:
        return (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(issuer).public_key(public_key)
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=not signing, path_length=None), critical=True)
                .add_extension(usage(signing), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))

    ca_name = name("dfdetect test CA")
    ca = certificate("dfdetect test CA", ca_name, ca_key.public_key(), False).sign(ca_key, hashes.SHA256())
    signer = (certificate("dfdetect test signer", ca.subject, key.public_key(), True)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
    chain = signer.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return chain, private


def sign_jpeg(source: Path, out: Path, digital_source_type: str = TRAINED,
              generator: tuple[str, str] = ("dfdetect-test-generator", "2.1")) -> Path:
    """`source` re-encoded as JPEG with a C2PA manifest declaring it `c2pa.created` as `digital_source_type`."""
    import c2pa

    chain, private = signing_certificates()
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(alg=b"es256", sign_cert=chain, private_key=private,
                                                       ta_url=None))
    manifest = {"claim_generator_info": [{"name": generator[0], "version": generator[1]}],
                "title": out.name, "format": "image/jpeg",
                "assertions": [{"label": "c2pa.actions", "data": {"actions": [
                    {"action": "c2pa.created", "digitalSourceType": digital_source_type}]}}]}
    unsigned = io.BytesIO()
    Image.open(source).convert("RGB").save(unsigned, format="JPEG", quality=92)
    unsigned.seek(0)
    signed = io.BytesIO()
    with c2pa.Builder(manifest) as builder:
        builder.sign(signer, "image/jpeg", unsigned, signed)
    out.write_bytes(signed.getvalue())
    return out
