"""VEX documents stored per account: accepting one (validated exactly as ``--vex`` files are) and the
triage inputs an account's stored documents give its reports and checks."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from portwarden.core.errors import VexDocumentError
from portwarden.core.triage.model import StoredVexDocument, TriageInputs
from portwarden.core.triage.vex import MAX_VEX_BYTES, parse_vex

# Statements of a stored document name it so: ``vex:<id>`` (the API's ``/vex/<id>``).
DOCUMENT_PREFIX = "vex:"


def accept_vex_document(data: bytes, *, now: datetime, document_id: str | None = None) -> StoredVexDocument:
    """A posted VEX document (OpenVEX 0.2, CycloneDX VEX 1.4 to 1.6) ready to store; ``VexDocumentError``
    naming what is wrong when it is not one."""
    if len(data) > MAX_VEX_BYTES:
        raise VexDocumentError(f"the VEX document is larger than {MAX_VEX_BYTES} bytes")
    identifier = document_id or str(uuid.uuid4())
    location = f"{DOCUMENT_PREFIX}{identifier}"
    statements = parse_vex(data, location)
    document: Any = json.loads(data)  # parse_vex has read it as a JSON object already
    return StoredVexDocument(
        id=identifier,
        format=statements[0].format,
        created_at=now,
        statements=statements,
        document=document,
    )


def stored_triage_inputs(documents: Sequence[StoredVexDocument]) -> TriageInputs:
    """The statements of ``documents`` in the order given (oldest first: a later one wins a tie)."""
    return TriageInputs(statements=tuple(s for document in documents for s in document.statements))
