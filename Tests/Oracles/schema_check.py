#!/usr/bin/python3
"""Checks YAML documents against a JSON Schema with Python's jsonschema (an independent validator).
Run with /usr/bin/python3: Debian's python3-jsonschema and python3-yaml (scripts/install-deps.sh).

Reads {"schema": <path>, "files": {"<name>": "<yaml text>", ...}} as JSON on stdin and prints
{"<name>": ["<error>", ...], ...}: the errors of every document of each file ([] when valid).
The schema itself is checked against the draft 2020-12 meta-schema first.

YAML is read as YAML 1.2's core schema reads it (as editors' yaml-language-server does and as
Syncwright does): only true/false are booleans, and timestamps stay strings.
"""
import json
import re
import sys

import jsonschema
import yaml


class CoreLoader(yaml.SafeLoader):
    pass


# YAML 1.1's resolvers turn yes/no/on/off into booleans and dates into datetimes; YAML 1.2's core
# schema does neither.
CoreLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
CoreLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))

request = json.load(sys.stdin)
schema = json.load(open(request["schema"]))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
out = {}
for name, text in request["files"].items():
    errors = []
    try:
        for index, document in enumerate(yaml.load_all(text, Loader=CoreLoader)):
            if document is None:
                continue
            for error in validator.iter_errors(document):
                path = ".".join(str(p) for p in error.absolute_path)
                errors.append(f"document {index + 1}: {path or '(root)'}: {error.message[:200]}")
    except yaml.YAMLError as error:
        errors.append(f"YAML: {str(error).splitlines()[0]}")
    out[name] = errors
print(json.dumps(out))
