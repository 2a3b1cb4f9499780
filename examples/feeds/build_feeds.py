"""Build the example feed files from the JSON sources in this folder.

Usage: python examples/feeds/build_feeds.py [OUTPUT_DIR]   (default: this folder)

* ``osv-all.zip``: every ``osv/*.json`` (real OSV records for packages of the example image), laid out
  like an OSV ``<ECOSYSTEM>/all.zip`` (one ``<ID>.json`` per member);
* ``debian.json``: ``debian/tracker-excerpt.json``, an excerpt of the Debian security tracker's
  ``/tracker/data/json`` for the example image's source packages.

The outputs are reproducible: members are sorted, every timestamp and permission is fixed and the JSON is
re-serialized canonically, so the same sources always give the same bytes.

    portwarden feeds sync --source osv=file://$PWD/examples/feeds/osv-all.zip \\
                          --source debian=file://$PWD/examples/feeds/debian.json
    portwarden scan oci-dir:examples/tiny
"""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Zip timestamps cannot be earlier than 1980.
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def canonical(path: Path) -> bytes:
    return (
        json.dumps(json.loads(path.read_text(encoding="utf-8")), indent=2, sort_keys=True) + "\n"
    ).encode()


def build_osv_zip(destination: Path) -> int:
    sources = sorted((HERE / "osv").glob("*.json"))
    with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for source in sources:
            record_id = json.loads(source.read_text(encoding="utf-8"))["id"]
            member = zipfile.ZipInfo(f"{record_id}.json", date_time=FIXED_TIME)
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = 0o644 << 16
            archive.writestr(member, canonical(source))
    return len(sources)


def main() -> None:
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
    output.mkdir(parents=True, exist_ok=True)
    count = build_osv_zip(output / "osv-all.zip")
    (output / "debian.json").write_bytes(canonical(HERE / "debian" / "tracker-excerpt.json"))
    print(f"wrote {output / 'osv-all.zip'} ({count} records) and {output / 'debian.json'}")


if __name__ == "__main__":
    main()
