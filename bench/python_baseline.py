"""The export a user would otherwise write: google-api-python-client + the csv module.

    python_baseline.py DISCOVERY_URL TOKEN OUT.csv [narrow | default COLUMN... | gmail]

narrow (the default): every Drive file (pages of 1000), the columns of gscrape's benchmark
query, asking for `files(<those fields>),nextPageToken` as gscrape does.
default: every Drive file with the columns given (gscrape's default columns, read from its
header), asking for `files,nextPageToken` as gscrape does for default columns.
gmail: messages.list, then messages.get for each id (id and snippet), as gscrape's fan-out.
"""
import csv
import sys

from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build

discovery_url, token, out = sys.argv[1:4]
mode = sys.argv[4] if len(sys.argv) > 4 else "narrow"

NARROW = ["id", "name", "mimeType", "size", "starred", "createdTime", "modifiedTime",
          "owners.emailAddress", "owners.displayName", "parents", "webViewLink"]
NARROW_FIELDS = ("files(id,name,mimeType,size,starred,createdTime,modifiedTime,"
                 "owners/emailAddress,owners/displayName,parents,webViewLink),nextPageToken")


def service(api, version):
    return build(api, version, credentials=Credentials(token),
                 discoveryServiceUrl=discovery_url, static_discovery=False,
                 cache_discovery=False)


def scalar(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def found(value, keys):
    """The values a dotted path reaches (a key applied to a list applies to each element)."""
    if not keys:
        return [] if value is None else [value]
    if isinstance(value, list):
        return [v for item in value for v in found(item, keys)]
    if isinstance(value, dict) and keys[0] in value:
        return found(value[keys[0]], keys[1:])
    return []


def cell(record, path):
    values = found(record, path.split("."))
    if len(values) == 1 and isinstance(values[0], list):
        values = values[0]
    return ";".join(scalar(v) for v in values)


def flatten(value, prefix, flat):
    """Every scalar of a record under its dotted path (a list's elements under the list's)."""
    if isinstance(value, dict):
        for key, item in value.items():
            flatten(item, f"{prefix}.{key}" if prefix else key, flat)
    elif isinstance(value, list):
        for item in value:
            flatten(item, prefix, flat)
    elif value is not None:
        flat.setdefault(prefix, []).append(scalar(value))


def drive_export(columns, fields, wide):
    drive = service("drive", "v3")
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        request = drive.files().list(pageSize=1000, fields=fields)
        while request is not None:
            response = request.execute()
            for file in response.get("files", []):
                if wide:
                    # Each record flattened once, then looked up column by column.
                    flat = {}
                    flatten(file, "", flat)
                    writer.writerow([";".join(flat.get(c, ())) for c in columns])
                else:
                    writer.writerow([cell(file, c) for c in columns])
            request = drive.files().list_next(request, response)


def gmail_export():
    gmail = service("gmail", "v1")
    messages = gmail.users().messages()
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "snippet"])
        request = messages.list(userId="me", maxResults=500, fields="messages/id,nextPageToken")
        while request is not None:
            response = request.execute()
            for ref in response.get("messages", []):
                message = messages.get(userId="me", id=ref["id"], fields="id,snippet").execute()
                writer.writerow([scalar(message.get("id")), scalar(message.get("snippet"))])
            request = messages.list_next(request, response)


if mode == "narrow":
    drive_export(NARROW, NARROW_FIELDS, wide=False)
elif mode == "default":
    drive_export(sys.argv[5:], "files,nextPageToken", wide=True)
elif mode == "gmail":
    gmail_export()
else:
    sys.exit(f"unknown mode {mode}")
