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

/// The comma-separated tokens of `TWILIO_AUTH_TOKEN` (several during a rotation).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tokens(Vec<Secret>);

impl Tokens {
    /// The tokens, in the order configured.
    pub fn iter(&self) -> impl Iterator<Item = &Secret> {
        self.0.iter()
    }

    /// The first token: the one REST calls authenticate with.
    pub fn first(&self) -> Option<&Secret> {
        self.0.first()
    }

    /// No token configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::str::FromStr for Tokens {
    type Err = std::convert::Infallible;

    fn from_str(value: &str) -> Result<Tokens, Self::Err> {
        Ok(Tokens(
            value
                .split(',')
                .map(str::trim)
                .filter(|token| !token.is_empty())
                .map(Secret::new)
                .collect(),
        ))
    }
}

impl FromIterator<Secret> for Tokens {
    fn from_iter<I: IntoIterator<Item = Secret>>(iter: I) -> Tokens {
        Tokens(iter.into_iter().collect())
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
        assert_eq!(format!("{tokens:?}"), "Tokens([[redacted], [redacted]])");
        assert_eq!(
            tokens.iter().map(Secret::expose).collect::<Vec<_>>(),
            ["aaa", "bbb"]
        );
        assert_eq!(tokens.first().map(Secret::expose), Some("aaa"));
    }
}
