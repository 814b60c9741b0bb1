"""Signing the service contract with the vendor's e.firma, and verifying it on every download.

:func:`sign_contract` takes the contract PDF from :mod:`core.contracts.documents` and

1. appends an evidence page ("Constancia de firma electrónica": signer, RFC, certificate number,
   validity, time, SHA-256 of the contract PDF) as an incremental update, so the original contract
   bytes stay a byte-for-byte prefix of the signed file;
2. signs the result as a PAdES signature (``ETSI.CAdES.detached``, SHA-256, RSA PKCS#1 v1.5) with
   pyHanko, embedding the e.firma certificate, so any PDF reader shows the signature;
3. also signs the exact bytes of the final PDF with RSA-SHA256 (a detached signature the database
   keeps next to the certificate and the digest).

:func:`verify_signed_contract` checks all of it again without trusting stored state: the digest, the
detached signature, and the embedded PAdES signature (intact, valid, covering the whole file, made
by the stored certificate). It is synchronous and cheap (two RSA verifications).

The e.firma private key only lives inside the :class:`~core.sat.credentials.Credential` passed in;
this module never serialises it. From async code, run :func:`sign_contract` with
``asyncio.to_thread`` (pyHanko's synchronous API starts its own event loop) or await
:func:`async_sign_contract`.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.attributes import CMSAttributeProvider, SignedAttributeProviderSpec
from pyhanko.sign.general import SigningError
from pyhanko.sign.validation.generic_cms import validate_sig_integrity
from pyhanko.sign.validation.status import SignatureCoverageLevel

from core.contracts.documents import build_pdf, clean_text, spanish_date, text_to_flowables
from core.errors import Invalid
from core.sat.certificate import SatCertificate
from core.sat.credentials import Credential, CredentialUse, kind_problem
from core.sat.errors import CredentialError, SatError

SIGNATURE_FIELD = "FirmaEfirmaContribuyente"
MEXICO_CITY = ZoneInfo("America/Mexico_City")
MAX_SIGNED_PDF = 20 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SignedContract:
    """What the service stores for a signed contract (none of it is secret)."""

    pdf_signed: bytes  # contract + evidence page + embedded PAdES signature
    signature: bytes  # RSA-SHA256 (PKCS#1 v1.5) with the e.firma over the exact bytes of pdf_signed
    digest_sha256: str  # hex SHA-256 of pdf_signed
    certificate_der: bytes  # the e.firma certificate
    certificate_number: str
    rfc: str
    signed_at: datetime
    signer_name: str
    contract_digest_sha256: str  # hex SHA-256 of the contract PDF as rendered (shown on the evidence page)

    def __repr__(self) -> str:
        return (
            f"SignedContract(rfc={self.rfc!r}, certificate_number={self.certificate_number!r}, "
            f"signed_at={self.signed_at.isoformat()!r}, digest_sha256={self.digest_sha256!r}, "
            f"pdf_signed={len(self.pdf_signed)} bytes)"
        )


class _SigningCertificateHash(CMSAttributeProvider):
    """signing-certificate-v2 with the certificate's SHA-256 only (``issuerSerial`` is optional).

    pyHanko's default also writes ``issuerSerial``, which asn1crypto then fails to parse for SAT
    certificates: SAT writes ``x500UniqueIdentifier`` as a PrintableString in subject and issuer,
    where asn1crypto expects a BIT STRING. The hash alone identifies the certificate.
    """

    attribute_type = "signing_certificate_v2"

    def __init__(self, certificate_der: bytes) -> None:
        self._digest = hashlib.sha256(certificate_der).digest()

    async def build_attr_value(self, dry_run: bool = False) -> tsp.SigningCertificateV2:
        return tsp.SigningCertificateV2(
            {"certs": [tsp.ESSCertIDv2({"hash_algorithm": {"algorithm": "sha256"}, "cert_hash": self._digest})]}
        )


class _PadesAttributes(SignedAttributeProviderSpec):
    """PAdES baseline signed attributes: only signing-certificate-v2 (no signing-time, per PAdES)."""

    def __init__(self, certificate_der: bytes) -> None:
        self._certificate_der = certificate_der

    def signed_attr_providers(self, data_digest: bytes, digest_algorithm: str) -> Iterable[CMSAttributeProvider]:
        yield _SigningCertificateHash(self._certificate_der)


class _CredentialSigner(signers.Signer):
    """A pyHanko signer that asks the :class:`Credential` for each raw signature (the key stays there)."""

    def __init__(self, credential: Credential) -> None:
        certificate = asn1_x509.Certificate.load(credential.certificate.der)
        super().__init__(
            signing_cert=certificate,
            # no registry: asn1crypto cannot hash SAT subjects (x500UniqueIdentifier is a PrintableString,
            # not the BIT STRING it expects); the signing certificate is embedded anyway.
            embed_roots=False,
        )
        self.signed_attr_prov_spec = _PadesAttributes(credential.certificate.der)
        self._credential = credential
        self._signature_size = credential.certificate.public_key.key_size // 8

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        if digest_algorithm.lower() != "sha256":
            raise SigningError(f"Unexpected digest algorithm {digest_algorithm}")
        if dry_run:
            return bytes(self._signature_size)
        return self._credential.sign(data)

    def __repr__(self) -> str:
        return f"_CredentialSigner({self._credential!r})"


# --- evidence page ---------------------------------------------------------------------------------


def _when(moment: datetime) -> str:
    local = moment.astimezone(MEXICO_CITY)
    utc = moment.astimezone(UTC)
    return (
        f"{spanish_date(local)}, {local:%H:%M:%S} hora del centro de México ({local:%z}); "
        f"{utc:%Y-%m-%dT%H:%M:%SZ} (UTC)"
    )


def evidence_text(
    *,
    certificate: SatCertificate,
    signer_name: str,
    signed_at: datetime,
    contract_digest_sha256: str,
    document_title: str,
) -> str:
    """The evidence page in the documents' line markup."""
    rows = [
        ("Documento", document_title),
        ("Firmante", signer_name),
        ("Titular del certificado", certificate.legal_name),
        ("RFC", certificate.rfc.value),
        ("Número de certificado", certificate.certificate_number),
        ("Vigencia del certificado", f"{certificate.valid_from:%Y-%m-%d} a {certificate.valid_until:%Y-%m-%d}"),
        ("Emisor del certificado", certificate.issuer_common_name or certificate.issuer_name),
        ("Fecha y hora de la firma", _when(signed_at)),
        ("Huella SHA-256 del contrato", contract_digest_sha256),
        ("Tipo de firma", "PAdES (firma PDF) con e.firma, RSA con SHA-256"),
    ]
    lines = [
        "# CONSTANCIA DE FIRMA ELECTRÓNICA",
        "Anexo al contrato · se agrega antes de firmar y queda cubierto por la firma",
        "",
        *(f"> {label}: {clean_text(value)}" for label, value in rows),
        "",
        "El contrato que antecede fue aceptado y firmado por el titular del certificado indicado, con su "
        "firma electrónica avanzada (e.firma) emitida por el Servicio de Administración Tributaria. La firma "
        "está incrustada en este archivo PDF y cubre todas sus páginas, incluida esta constancia; cualquier "
        "modificación posterior la invalida. La huella SHA-256 corresponde al archivo del contrato tal como "
        "fue generado, antes de agregar esta constancia.",
    ]
    return "\n".join(lines)


def _evidence_pdf(text: str, *, signed_at: datetime, rfc: str) -> bytes:
    return build_pdf(
        text_to_flowables(text),
        title="Constancia de firma electrónica",
        subject=f"Constancia de firma · RFC {rfc}",
        author="Timbrado de complementos de pago",
        footer=f"Constancia de firma electrónica · anexo al contrato · RFC {rfc}",
        issued_at=signed_at,
        page_numbers=False,
    )


def _invalid_pdf() -> Invalid:
    return Invalid("El contrato a firmar no es un PDF válido.", code="invalid_contract_pdf")


def _pdf_dict(entries: dict[str, Any]) -> Any:
    return generic.DictionaryObject({generic.pdf_name(k): v for k, v in entries.items()})  # type: ignore[no-untyped-call]


def _append_page(writer: IncrementalPdfFileWriter, page_pdf: bytes) -> None:
    """Append the first page of ``page_pdf`` to the document in ``writer`` (as a form XObject)."""
    source = PdfFileReader(io.BytesIO(page_pdf))
    media_box = [int(v) for v in source.root["/Pages"]["/Kids"][0].get_object()["/MediaBox"]]
    xobject = writer.import_page_as_xobject(source, page_ix=0)
    content = generic.StreamObject(stream_data=b"q /Constancia Do Q")
    page = _pdf_dict(
        {
            "/Type": generic.pdf_name("/Page"),
            "/MediaBox": generic.ArrayObject(generic.NumberObject(v) for v in media_box),  # type: ignore[no-untyped-call]
            "/Resources": _pdf_dict({"/XObject": _pdf_dict({"/Constancia": xobject})}),
            "/Contents": writer.add_object(content),
        }
    )
    writer.insert_page(page)  # type: ignore[no-untyped-call]


class _FixedTimeSigner(signers.PdfSigner):
    """Records ``signed_at`` (not the wall clock) as the signature's /M time."""

    def __init__(self, *args: Any, signed_at: datetime, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._signed_at = signed_at

    def init_signing_session(self, pdf_out: Any, existing_fields_only: bool = False) -> Any:
        session = super().init_signing_session(pdf_out, existing_fields_only=existing_fields_only)
        session.system_time = self._signed_at
        return session


def _check_credential(credential: Credential, signed_at: datetime) -> None:
    problem: CredentialError | None = kind_problem(credential.certificate, CredentialUse.FIEL)
    if problem is None:
        problem = credential.certificate.validity_problem(signed_at)
    if problem is not None:
        raise problem


async def async_sign_contract(
    pdf: bytes,
    credential: Credential,
    *,
    signed_at: datetime,
    signer_name: str,
    document_title: str = "Contrato de prestación de servicios de timbrado de complementos de pago",
) -> SignedContract:
    """Append the evidence page, sign with PAdES and RSA-SHA256. See the module docstring.

    Raises :class:`~core.sat.errors.CredentialError` when the credential is not an e.firma or is not
    valid at ``signed_at`` (the caller checks issuer and RFC with ``open_credential`` first), and
    :class:`~core.errors.Invalid` when ``pdf`` is not a PDF.
    """
    if signed_at.tzinfo is None:
        raise ValueError("signed_at must be timezone-aware")
    _check_credential(credential, signed_at)
    name = clean_text(signer_name)[:200]
    if not name:
        raise Invalid("El nombre del firmante es obligatorio.", code="signer_name_required")
    certificate = credential.certificate
    contract_digest = hashlib.sha256(pdf).hexdigest()
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    except (PdfError, ValueError, KeyError, IndexError, TypeError):
        raise _invalid_pdf() from None
    text = evidence_text(
        certificate=certificate,
        signer_name=name,
        signed_at=signed_at,
        contract_digest_sha256=contract_digest,
        document_title=document_title,
    )
    _append_page(writer, _evidence_pdf(text, signed_at=signed_at, rfc=certificate.rfc.value))
    metadata = signers.PdfSignatureMetadata(
        field_name=SIGNATURE_FIELD,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        name=name,
        reason="Aceptación del contrato de prestación de servicios de timbrado",
        location="México",
    )
    pdf_signer = _FixedTimeSigner(
        metadata,
        _CredentialSigner(credential),
        new_field_spec=fields.SigFieldSpec(sig_field_name=SIGNATURE_FIELD),
        signed_at=signed_at,
    )
    output = await pdf_signer.async_sign_pdf(writer)
    signed_pdf = output.getvalue()
    return SignedContract(
        pdf_signed=signed_pdf,
        signature=credential.sign(signed_pdf),
        digest_sha256=hashlib.sha256(signed_pdf).hexdigest(),
        certificate_der=certificate.der,
        certificate_number=certificate.certificate_number,
        rfc=certificate.rfc.value,
        signed_at=signed_at,
        signer_name=name,
        contract_digest_sha256=contract_digest,
    )


def sign_contract(
    pdf: bytes,
    credential: Credential,
    *,
    signed_at: datetime,
    signer_name: str,
    document_title: str = "Contrato de prestación de servicios de timbrado de complementos de pago",
) -> SignedContract:
    """Synchronous :func:`async_sign_contract` (not from inside a running event loop)."""
    return asyncio.run(
        async_sign_contract(
            pdf, credential, signed_at=signed_at, signer_name=signer_name, document_title=document_title
        )
    )


# --- verification ----------------------------------------------------------------------------------


def _pades_problem(pdf_signed: bytes, certificate_der: bytes) -> str | None:
    try:
        reader = PdfFileReader(io.BytesIO(pdf_signed), strict=False)
        embedded = reader.embedded_signatures
        if len(embedded) != 1:
            return "El PDF no contiene exactamente una firma."
        signature = embedded[0]
        if signature.signer_cert.dump() != certificate_der:
            return "La firma del PDF no fue hecha con el certificado registrado."
        signature.compute_integrity_info(skip_diff=True)
        if signature.coverage is not SignatureCoverageLevel.ENTIRE_FILE:
            return "La firma del PDF no cubre todo el archivo: fue modificado después de firmarse."
        intact, valid = validate_sig_integrity(
            signature.signer_info,
            signature.signer_cert,
            expected_content_type="data",
            actual_digest=signature.compute_digest(),
        )
    except Exception:  # any parse problem in a hostile file means "not valid"
        return "El PDF firmado está dañado o no tiene una firma legible."
    if not intact:
        return "El contenido del PDF no coincide con la firma."
    if not valid:
        return "La firma del PDF no es válida."
    return None


def verification_problem(
    pdf_signed: bytes,
    *,
    signature: bytes,
    certificate_der: bytes,
    digest_sha256: str | None = None,
) -> str | None:
    """Why a stored signed contract does not verify (Spanish, for staff), or None when it does."""
    if not isinstance(pdf_signed, bytes | bytearray) or len(pdf_signed) > MAX_SIGNED_PDF:
        return "El PDF firmado no es válido."
    pdf_signed = bytes(pdf_signed)
    if digest_sha256 is not None and hashlib.sha256(pdf_signed).hexdigest() != digest_sha256.lower():
        return "La huella SHA-256 del PDF no coincide con la registrada."
    try:
        certificate = SatCertificate.load(certificate_der)
    except SatError:
        return "El certificado registrado no es válido."
    if not certificate.verify(pdf_signed, signature):
        return "La firma RSA-SHA256 registrada no corresponde al PDF."
    return _pades_problem(pdf_signed, certificate.der)


def verify_signed_contract(
    pdf_signed: bytes,
    *,
    signature: bytes,
    certificate_der: bytes,
    digest_sha256: str | None = None,
) -> bool:
    """True when the detached signature, the digest and the embedded PAdES signature all verify."""
    return (
        verification_problem(
            pdf_signed, signature=signature, certificate_der=certificate_der, digest_sha256=digest_sha256
        )
        is None
    )
