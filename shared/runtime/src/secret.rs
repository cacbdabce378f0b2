//! Secrets (auth tokens, API secrets, NATS passwords) in a type whose `Debug` and `Display`
//! never show the value, so no log line or panic message can leak one.

use std::fmt;

/// A secret string; printing it shows `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one place that needs it (an HMAC key, a connect option).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(value: &str) -> Result<Secret, Self::Err> {
        Ok(Secret::new(value))
    }
}

/// The comma-separated entries of `TWILIO_AUTH_TOKEN`: bare tokens, which apply to every
/// account (several during a rotation), and `AC...:token` entries bound to one account (a
/// subaccount signs its webhooks with its own token).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tokens {
    bare: Vec<Secret>,
    bound: Vec<(String, Secret)>,
}

impl Tokens {
    /// The tokens that apply to every account, in the order configured.
    pub fn bare(&self) -> impl Iterator<Item = &Secret> {
        self.bare.iter()
    }

    /// The tokens bound to `account_sid`.
    pub fn bound_to<'a>(&'a self, account_sid: &'a str) -> impl Iterator<Item = &'a Secret> {
        self.bound
            .iter()
            .filter(move |(account, _)| account == account_sid)
            .map(|(_, token)| token)
    }

    /// The token REST calls for `account_sid` authenticate with: the one bound to it, else the
    /// first bare one.
    pub fn for_rest<'a>(&'a self, account_sid: &'a str) -> Option<&'a Secret> {
        self.bound_to(account_sid)
            .next()
            .or_else(|| self.bare.first())
    }

    /// No token configured.
    pub fn is_empty(&self) -> bool {
        self.bare.is_empty() && self.bound.is_empty()
    }
}

/// Whether `value` is an account SID: `AC` and 32 letters or digits.
pub fn is_account_sid(value: &str) -> bool {
    value.len() == 34
        && value.starts_with("AC")
        && value.bytes().skip(2).all(|b| b.is_ascii_alphanumeric())
}

impl std::str::FromStr for Tokens {
    type Err = std::convert::Infallible;

    fn from_str(value: &str) -> Result<Tokens, Self::Err> {
        let mut tokens = Tokens::default();
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            match entry.split_once(':') {
                Some((account, token)) if is_account_sid(account) && !token.is_empty() => {
                    tokens
                        .bound
                        .push((account.to_owned(), Secret::new(token.trim())));
                }
                _ => tokens.bare.push(Secret::new(entry)),
            }
        }
        Ok(tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?} {secret}"), "[redacted] [redacted]");
        let tokens: Tokens = "aaa, bbb,,".parse().unwrap();
        assert_eq!(
            format!("{tokens:?}"),
            "Tokens { bare: [[redacted], [redacted]], bound: [] }"
        );
        assert_eq!(
            tokens.bare().map(Secret::expose).collect::<Vec<_>>(),
            ["aaa", "bbb"]
        );
    }

    #[test]
    fn entries_bind_tokens_to_accounts() {
        const SUB: &str = "AC00000000000000000000000000000002";
        let tokens: Tokens = format!("parent-token, {SUB}:sub-token, ACshort:x")
            .parse()
            .unwrap();
        assert_eq!(
            tokens.bare().map(Secret::expose).collect::<Vec<_>>(),
            ["parent-token", "ACshort:x"]
        );
        assert_eq!(
            tokens.bound_to(SUB).map(Secret::expose).collect::<Vec<_>>(),
            ["sub-token"]
        );
        assert_eq!(
            tokens
                .bound_to("AC00000000000000000000000000000003")
                .count(),
            0
        );
        assert_eq!(tokens.for_rest(SUB).map(Secret::expose), Some("sub-token"));
        assert_eq!(
            tokens
                .for_rest("AC00000000000000000000000000000003")
                .map(Secret::expose),
            Some("parent-token")
        );
    }
}
