"""Tokens and keys for tests/e2e/auth.rs, made with an independent JWT
library (PyJWT with cryptography), and a small OIDC discovery server.

Usage:
  python jwt_tool.py keys DIR KID...   one key per KID (its algorithm from the
                                       KID's prefix: rs*, es*, ed*): DIR/KID.pem
                                       (private), DIR/jwks-KID.json (public JWK)
  python jwt_tool.py jwks DIR OUT KID... the public keys of KIDs as one JWKS
  python jwt_tool.py mint DIR KID CLAIMS_JSON [ALG]  prints a token signed with
                                       KID's key; "exp"/"nbf"/"iat" given as
                                       "+N"/"-N" are relative to now. ALG
                                       overrides the header's alg: "none" makes
                                       an unsigned token, "HS256" one signed
                                       with the public key (PEM) as secret.
  python jwt_tool.py serve DIR         serves DIR/.well-known/openid-configuration
                                       and DIR/jwks.json; prints "ready PORT"
"""

import json, os, sys, time, http.server, threading

import jwt
from jwt.algorithms import RSAAlgorithm, ECAlgorithm, OKPAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa, ec, ed25519

ALGS = {"rs": "RS256", "es": "ES256", "ed": "EdDSA"}


def alg_of(kid):
    return ALGS[kid[:2]]


def new_key(kid):
    alg = alg_of(kid)
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


def public_jwk(key, kid):
    alg = alg_of(kid)
    pub = key.public_key()
    algo = {"RS256": RSAAlgorithm, "ES256": ECAlgorithm, "EdDSA": OKPAlgorithm}[alg]
    jwk = json.loads(algo.to_jwk(pub))
    jwk.update({"kid": kid, "use": "sig", "alg": alg})
    return jwk


def load(d, kid):
    with open(os.path.join(d, kid + ".pem"), "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def keys(d, kids):
    os.makedirs(d, exist_ok=True)
    for kid in kids:
        key = new_key(kid)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        with open(os.path.join(d, kid + ".pem"), "wb") as f:
            f.write(pem)


def jwks(d, out, kids):
    doc = {"keys": [public_jwk(load(d, k), k) for k in kids]}
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.replace(tmp, out)


def mint(d, kid, claims, alg=None):
    now = int(time.time())
    for k in ("exp", "nbf", "iat"):
        v = claims.get(k)
        if isinstance(v, str) and v[:1] in "+-":
            claims[k] = now + int(v)
    key = load(d, kid)
    if alg == "none":
        return jwt.encode(claims, None, algorithm="none", headers={"kid": kid})
    if alg == "HS256":
        # The classic confusion attack: the public key as an HMAC secret.
        # PyJWT refuses PEM secrets, so sign by hand.
        import hmac, hashlib, base64
        pub = key.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
        b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
        head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
        body = b64(json.dumps(claims).encode())
        sig = hmac.new(pub, f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}.{b64(sig)}"
    return jwt.encode(claims, key, algorithm=alg or alg_of(kid), headers={"kid": kid})


def serve(d):
    class H(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=d, **k)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    print(f"ready {srv.server_address[1]}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "keys":
        keys(args[0], args[1:])
    elif cmd == "jwks":
        jwks(args[0], args[1], args[2:])
    elif cmd == "mint":
        print(mint(args[0], args[1], json.loads(args[2]), args[3] if len(args) > 3 else None))
    elif cmd == "serve":
        serve(args[0])
    else:
        sys.exit(f"unknown command {cmd}")
