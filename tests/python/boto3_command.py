"""InvokeAgentRuntimeCommand through boto3's own `bedrock-agentcore` client,
pointed at termtrail (`serve` or `proxy`) with endpoint_url.

Usage: boto3_command.py ENDPOINT_URL REQUEST_JSON

REQUEST_JSON: {"arn": ..., "session": ..., "command": ..., "timeout": N,
"bearer": TOKEN} ("timeout" and "bearer" optional; with "bearer" the signed
request's Authorization header is replaced by that bearer token, as a
JWT-authenticated AgentCore runtime expects). Prints one JSON object: on success
{"stdout", "stderr", "exit_code", "status", "events": [names in order],
 "headers": {response headers}}; on an error raised by botocore
{"error": {"class": exception class name, "code": error code,
 "message": ..., "http": status, "during": "call" | "stream"}}.
Retries are off so a refusal is seen once.
"""

import json
import sys

import boto3
from botocore.config import Config


def main():
    endpoint, request = sys.argv[1], json.loads(sys.argv[2])
    client = boto3.client(
        "bedrock-agentcore",
        region_name="us-west-2",
        endpoint_url=endpoint,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="not-a-secret",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=30),
    )
    if "bearer" in request:
        token = request["bearer"]

        def bearer(request, **_):
            request.headers["Authorization"] = "Bearer " + token

        client.meta.events.register(
            "before-send.bedrock-agentcore.InvokeAgentRuntimeCommand", bearer)
    body = {"command": request["command"]}
    if "timeout" in request:
        body["timeout"] = request["timeout"]
    during = "call"
    out = {"stdout": "", "stderr": "", "events": []}
    try:
        resp = client.invoke_agent_runtime_command(
            agentRuntimeArn=request["arn"],
            runtimeSessionId=request["session"],
            body=body,
        )
        out["headers"] = dict(resp["ResponseMetadata"]["HTTPHeaders"])
        out["content_type"] = resp.get("contentType")
        out["session"] = resp.get("runtimeSessionId")
        during = "stream"
        for event in resp["stream"]:
            for name, chunk in event.items():
                if name != "chunk":
                    out["events"].append(name)
                    continue
                for kind, data in chunk.items():
                    out["events"].append(kind)
                    if kind == "contentDelta":
                        out["stdout"] += data.get("stdout", "")
                        out["stderr"] += data.get("stderr", "")
                    elif kind == "contentStop":
                        out["exit_code"] = data["exitCode"]
                        out["status"] = data["status"]
    except client.exceptions.ClientError as e:
        err = e.response.get("Error", {})
        out["error"] = {
            "class": type(e).__name__,
            "code": err.get("Code"),
            "message": err.get("Message"),
            "http": e.response.get("ResponseMetadata", {}).get("HTTPStatusCode"),
            "during": during,
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
