//! Advice for the core's errors, by their kind ([`metrics_hub::Error::kind`]).

/// The `kind` of a collection whose task panicked, as the core names
/// [`Error::Panicked`](metrics_hub::Error::Panicked).
pub(crate) const PANICKED: &str = "panicked";

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
    use metrics_hub::Error;

    #[test]
    fn every_kind_a_collection_can_fail_with_has_advice() {
        let generic = hint("no such kind", "vumi");
        for error in [
            Error::api("outline", 401, None, "m"),
            Error::api("coopr", 403, None, "m"),
            Error::api("vumi", 404, None, "m"),
            Error::api("unleash", 429, None, "m"),
            Error::timeout("appoptics", "m"),
            Error::decode("vumi", "a", "m"),
            Error::config("coopr", "m"),
        ] {
            assert_ne!(hint(error.kind(), error.backend()), generic, "{error}");
        }
        assert!(hint("unauthenticated", "unleash").contains("admin_token"));
    }
}
