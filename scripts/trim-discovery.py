#!/usr/bin/env python3
"""Regenerate tests/fixtures/discovery/*.json: real Discovery documents trimmed to the methods the
fake Google server implements and the schemas they reach. Usage: scripts/trim-discovery.py SHARED_DISCOVERY_DIR"""
import json, sys, pathlib

KEEP = {
    "drive.v3.json": {"drive.files.list", "drive.files.get", "drive.files.create"},
    "gmail.v1.json": {"gmail.users.messages.list", "gmail.users.messages.get"},
    "calendar.v3.json": {"calendar.events.list"},
    "admin.directory_v1.json": {"directory.users.list"},
    "analyticsdata.v1beta.json": {"analyticsdata.properties.runReport"},
    "searchconsole.v1.json": {"webmasters.searchanalytics.query"},
    "youtubeAnalytics.v2.json": {"youtubeAnalytics.reports.query"},
    "bigquery.v2.json": {"bigquery.jobs.query", "bigquery.jobs.getQueryResults"},
    "sheets.v4.json": {"sheets.spreadsheets.create", "sheets.spreadsheets.get", "sheets.spreadsheets.batchUpdate", "sheets.spreadsheets.values.update", "sheets.spreadsheets.values.append", "sheets.spreadsheets.values.get"},
    "customsearch.v1.json": {"search.cse.list"},
    "discovery.v1.json": {"discovery.apis.list"},
}

def trim_resources(resources, keep):
    out = {}
    for name, res in resources.items():
        r = {}
        methods = {k: m for k, m in res.get("methods", {}).items() if m["id"] in keep}
        if methods:
            r["methods"] = methods
        sub = trim_resources(res.get("resources", {}), keep)
        if sub:
            r["resources"] = sub
        if r:
            out[name] = r
    return out

def refs(node, acc):
    if isinstance(node, dict):
        if "$ref" in node:
            acc.add(node["$ref"])
        for v in node.values():
            refs(v, acc)
    elif isinstance(node, list):
        for v in node:
            refs(v, acc)

def main(src_dir):
    dst = pathlib.Path(__file__).resolve().parent.parent / "tests/fixtures/discovery"
    for fname, keep in KEEP.items():
        doc = json.load(open(pathlib.Path(src_dir) / fname))
        doc["resources"] = trim_resources(doc.get("resources", {}), keep)
        seen, todo = set(), set()
        refs(doc["resources"], todo)
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            refs(doc["schemas"][name], todo)
        doc["schemas"] = {k: v for k, v in doc["schemas"].items() if k in seen}
        doc.pop("icons", None)
        (dst / fname).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
        print(fname, len(seen), "schemas")

main(sys.argv[1] if len(sys.argv) > 1 else "../shared/discovery")
