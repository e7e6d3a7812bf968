"""Bad input is one line on stderr and exit 2, and never a run without end: a certificate
whose optional fields are null or missing, counts beyond their documented limits, a machine
too large for the bounded check, a Dask scheduler address that is no scheduler, a directory
given as a protocol file, an empty output path."""
from __future__ import annotations

import json

import pytest

from conformance.certificate import CERT_FIELDS
from conformance.cli import EXIT_FAIL, EXIT_PASS, EXIT_USAGE, main


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# -- 1. a certificate's optional fields, null or missing ---------------------------------
@pytest.fixture(scope="module")
def bounded_certificate(tmp_path_factory):
    """A real certificate with a bounded check (linux, PASS): its data."""
    out = tmp_path_factory.mktemp("cert")
    assert main(["certify", "linux", "--examples", "5", "--chunk", "5", "--jobs", "1",
                 "--database", "none", "--repro-dir", str(out / "repro"), "--bound", "1",
                 "--out", str(out / "c")]) == EXIT_PASS
    with open(out / "c" / "certificate.json") as fh:
        return json.load(fh)


OPTIONAL = [f[:-1] for f, _ in CERT_FIELDS if f.endswith("?")]


@pytest.mark.parametrize("how", ["null", "missing"])
@pytest.mark.parametrize("field", OPTIONAL)
def test_an_optional_certificate_field_null_or_missing_is_no_crash(
        bounded_certificate, tmp_path, capsys, field, how):
    """Every field the certificate's table lets be missing or null (a ``?`` row) is read
    as such by the re-run: ``protocol.sources: null`` was an AttributeError, a missing
    ``run.max_examples`` or ``bounded.fail_k`` a KeyError (exit 3). The bounded record
    is made a stopped one, so that the re-run reads ``stopped`` too."""
    cert = json.loads(json.dumps(bounded_certificate))
    cert["bounded"]["passed"] = False
    cert["bounded"]["stopped"] = "budget"
    *parents, key = field.split(".")
    obj = cert
    for p in parents:
        obj = obj[p]
    if how == "null":
        obj[key] = None
    else:
        obj.pop(key)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cert))
    assert main(["certify", "--reproduce", str(path), "--jobs", "1"]) in (EXIT_PASS, EXIT_FAIL)
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err, err
