#!/usr/bin/env bash
# Fetches the full corpus of Google's Discovery documents (the copy that the PyPI package
# google-api-python-client ships in googleapiclient/discovery_cache/documents/) into
# target/discovery-corpus/, for the corpus conformance test (tests/corpus.rs).
#   scripts/fetch-corpus.sh [DEST]
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${1:-target/discovery-corpus}"
version="${GSCRAPE_CORPUS_VERSION:-2.202.0}"

if [ -f "$dest/.complete" ]; then
  echo "corpus already in $dest ($(cat "$dest/.complete"))"
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
if ! python3 -m pip download --quiet --no-deps --only-binary :all: \
    "google-api-python-client==$version" -d "$tmp" 2>/dev/null; then
  echo "google-api-python-client $version is not available; taking the newest" >&2
  python3 -m pip download --quiet --no-deps --only-binary :all: google-api-python-client -d "$tmp"
fi
wheel="$(ls "$tmp"/google_api_python_client-*.whl)"
rm -rf "$dest"
mkdir -p "$dest"
python3 - "$wheel" "$dest" <<'PY'
import pathlib, sys, zipfile
wheel, dest = sys.argv[1], pathlib.Path(sys.argv[2])
prefix = "googleapiclient/discovery_cache/documents/"
count = 0
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(prefix) and name.endswith(".json"):
            (dest / name[len(prefix):]).write_bytes(z.read(name))
            count += 1
print(f"{count} Discovery documents from {pathlib.Path(wheel).name} in {dest}")
PY
basename "$wheel" > "$dest/.complete"
