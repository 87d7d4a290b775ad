"""The export a user would otherwise write: google-api-python-client + the csv module.

    python_baseline.py DISCOVERY_URL TOKEN OUT.csv

Lists every Drive file (pages of 1000) from the server the Discovery document points at and
writes the same columns as gscrape's benchmark query.
"""
import csv
import sys

from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build

discovery_url, token, out = sys.argv[1:4]
drive = build(
    "drive",
    "v3",
    credentials=Credentials(token),
    discoveryServiceUrl=discovery_url,
    static_discovery=False,
    cache_discovery=False,
)
columns = ["id", "name", "mimeType", "size", "starred", "createdTime", "modifiedTime",
           "owners.emailAddress", "owners.displayName", "parents", "webViewLink"]


def cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


with open(out, "w", newline="", encoding="utf-8") as f:
    writer = csv.writer(f)
    writer.writerow(columns)
    request = drive.files().list(pageSize=1000)
    while request is not None:
        response = request.execute()
        for file in response.get("files", []):
            owners = file.get("owners", [])
            writer.writerow([
                cell(file.get("id")), cell(file.get("name")), cell(file.get("mimeType")),
                cell(file.get("size")), cell(file.get("starred")), cell(file.get("createdTime")),
                cell(file.get("modifiedTime")),
                ";".join(o.get("emailAddress", "") for o in owners),
                ";".join(o.get("displayName", "") for o in owners),
                ";".join(file.get("parents", [])), cell(file.get("webViewLink")),
            ])
        request = drive.files().list_next(request, response)
