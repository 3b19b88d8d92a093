"""Checks the description against the OpenAPI 3.1 specification (openapi-spec-validator), then
calls operations of Rewind's query API with parameters that reach stored data, and holds each
answer to the OpenAPI description with schemathesis' checks (status, content type, headers and
body schema), as the fuzzing run cannot be relied on to reach data for every operation.

Usage: openapi_cases.py QUERY_URL TOKEN CASES_JSON, where CASES_JSON is a list of
{"method", "path", "path_parameters", "query", "body"}. Prints [{"path", "status", "bytes"}].
A case whose answer breaks the description raises, naming the check.
"""

import json
import sys

import requests
import schemathesis
from openapi_spec_validator import validate

base, token, cases = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
headers = {"Authorization": f"Bearer {token}"}
validate(requests.get(f"{base}/api/openapi.json", timeout=30).json())
schema = schemathesis.openapi.from_url(f"{base}/api/openapi.json")
answers = []
for c in cases:
    operation = schema[c["path"]][c.get("method", "GET")]
    extra = {"body": c["body"], "media_type": "application/json"} if "body" in c else {}
    case = operation.Case(path_parameters=c.get("path_parameters"), query=c.get("query"), **extra)
    response = case.call_and_validate(base_url=base, headers=headers)
    answers.append({"path": c["path"], "status": response.status_code, "bytes": len(response.content)})
print(json.dumps(answers))
