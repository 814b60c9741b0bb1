"""SAT value objects: RFC, certificates, private keys and credentials (CSD / e.firma)."""

from core.sat.certificate import MAX_CERTIFICATE_SIZE, CertificateKind, SatCertificate
from core.sat.credentials import (
    Credential,
    CredentialUse,
    certificate_problem,
    kind_problem,
    open_credential,
)
from core.sat.errors import CredentialError, CredentialErrorCode, RfcError, SatError
from core.sat.private_key import MAX_PRIVATE_KEY_SIZE, load_private_key
from core.sat.rfc import Rfc, RfcKind
from core.sat.trust import (
    IssuerKind,
    SatTrust,
    classify_issuer_name,
    issuer_problem,
    load_ca_certificates,
    load_ca_files,
)

__all__ = [
    "MAX_CERTIFICATE_SIZE",
    "MAX_PRIVATE_KEY_SIZE",
    "CertificateKind",
    "Credential",
    "CredentialError",
    "CredentialErrorCode",
    "CredentialUse",
    "IssuerKind",
    "Rfc",
    "RfcError",
    "RfcKind",
    "SatCertificate",
    "SatError",
    "SatTrust",
    "certificate_problem",
    "classify_issuer_name",
    "issuer_problem",
    "kind_problem",
    "load_ca_certificates",
    "load_ca_files",
    "load_private_key",
    "open_credential",
]
