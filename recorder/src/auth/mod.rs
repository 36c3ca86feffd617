//! Who is on the other end of a connection: the authenticated [`Identity`]
//! every shell, command and policy decision is made for, and how it was
//! established ([`AuthMethod`]).

/// How a client's identity was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// An OAuth 2.0 / OIDC bearer token (JWT).
    Jwt,
    /// A signed AWS STS `GetCallerIdentity` request.
    Iam,
    /// `--no-auth` (loopback only): the principal is the host's own user.
    None,
}

impl AuthMethod {
    /// The name in headers, the audit log and `--auth`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Jwt => "jwt",
            AuthMethod::Iam => "iam",
            AuthMethod::None => "none",
        }
    }
}

/// An authenticated client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Who: a token's `sub`, an IAM caller's ARN, or (without
    /// authentication) the host's user.
    pub principal: String,
    /// Groups the principal is a member of (a token's `groups` or
    /// `cognito:groups` claim); empty for IAM and `--no-auth`.
    pub groups: Vec<String>,
    /// How the identity was established.
    pub method: AuthMethod,
}

impl Identity {
    /// The identity of every client of a host run with `--no-auth`.
    pub fn unauthenticated(principal: &str) -> Identity {
        Identity {
            principal: principal.to_string(),
            groups: Vec::new(),
            method: AuthMethod::None,
        }
    }
}
