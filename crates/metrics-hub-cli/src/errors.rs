//! Names and advice for the core's errors.

use metrics_hub::Error;

/// A stable snake_case name of the error's variant, the `kind` label of
/// `metrics_hub_collect_errors_total`. `panic` is used for a collection that panicked, which
/// is not an error variant.
pub(crate) fn kind(error: &Error) -> &'static str {
    match error {
        Error::Config { .. } => "config",
        Error::InvalidInput { .. } => "invalid_input",
        Error::Unauthenticated { .. } => "unauthenticated",
        Error::Forbidden { .. } => "forbidden",
        Error::NotFound { .. } => "not_found",
        Error::RateLimited { .. } => "rate_limited",
        Error::Api { .. } => "api",
        Error::Unsupported { .. } => "unsupported",
        Error::Timeout { .. } => "timeout",
        Error::Tls { .. } => "tls",
        Error::Transport { .. } => "transport",
        Error::Decode { .. } => "decode",
        Error::BodyTooLarge { .. } => "body_too_large",
        Error::Incomplete { .. } => "incomplete",
        _ => "other",
    }
}

/// The kind name of a collection that panicked.
pub(crate) const PANIC: &str = "panic";

/// What to change when a source fails with an error of `kind`, in terms of its config keys.
pub(crate) fn hint(kind: &str, backend: &str) -> &'static str {
    match (kind, backend) {
        ("unauthenticated" | "forbidden", "outline") => {
            "check `api_url`: its secret path is the credential"
        }
        ("unauthenticated" | "forbidden", "appoptics") => {
            "check `token` (a token with read access, from the organization settings)"
        }
        ("unauthenticated" | "forbidden", "unleash") => {
            "check `admin_token`: reading metrics back needs an admin or personal access token"
        }
        ("unauthenticated" | "forbidden", "coopr") => "check `user_id` and `tenant`",
        ("unauthenticated" | "forbidden", _) => {
            "check `token`, or `username` and `password`, and `owner_id`"
        }
        ("transport", "appoptics") => {
            "check `base_url` and that the server can be reached from here"
        }
        ("transport", "outline") => "check `api_url` and that the server can be reached from here",
        ("transport", _) => "check `url` and that the server can be reached from here",
        ("tls", _) => "check `cert_sha256` (Outline) or the server's certificate",
        ("not_found", _) => "check the URL's path, and that the metrics or flags asked for exist",
        ("timeout", _) => {
            "the server did not answer within `timeout`: raise it, or check the server"
        }
        ("rate_limited", _) => "the server limits requests: raise `interval`",
        ("decode" | "unsupported", _) => {
            "the answer is not what this API sends: is the URL the right server and API version?"
        }
        ("config" | "invalid_input", _) => "change the setting the message names",
        ("body_too_large", _) => "narrow `range` or `names`, or widen `step`",
        _ => "see the message; the server answered with an error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_snake_case_variant_names() {
        assert_eq!(kind(&Error::api("x", 401, None, "m")), "unauthenticated");
        assert_eq!(kind(&Error::api("x", 429, None, "m")), "rate_limited");
        assert_eq!(kind(&Error::api("x", 502, None, "m")), "api");
        assert_eq!(kind(&Error::timeout("x", "m")), "timeout");
        assert_eq!(kind(&Error::decode("x", "a", "m")), "decode");
        assert_eq!(kind(&Error::config("x", "m")), "config");
    }
}
