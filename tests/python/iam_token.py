"""Mints a termtrail IAM token (docs/protocol.md §8.4) with botocore's own
SigV4 signer — an implementation independent of termtrail's — from the
credentials in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).

Usage: python iam_token.py URL SERVER_ID REGION [AGE_SECONDS]
URL is where the signed request is addressed (the host's STS endpoint, or
another one to test that the host refuses it); AGE_SECONDS signs it that long
ago. Prints the token."""

import base64, datetime, json, os, sys
from unittest import mock

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

url, server_id, region = sys.argv[1:4]
age = int(sys.argv[4]) if len(sys.argv) > 4 else 0
body = "Action=GetCallerIdentity&Version=2011-06-15"
req = AWSRequest(method="POST", url=url, data=body, headers={
    "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
    "X-Termtrail-Server-Id": server_id,
})
creds = Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"],
                    os.environ.get("AWS_SESSION_TOKEN"))
when = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - datetime.timedelta(seconds=age)
with mock.patch.object(botocore.auth, "get_current_datetime", lambda *a, **k: when):
    botocore.auth.SigV4Auth(creds, "sts", region).add_auth(req)
headers = {}
for k, v in req.headers.items():
    headers.setdefault(k, []).append(v if isinstance(v, str) else v.decode())
doc = {"method": "POST", "url": url, "headers": headers, "body": body}
enc = base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")
print("termtrail-iam-v1." + enc)
