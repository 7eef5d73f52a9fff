//! The OpenAPI validation of `POST /api/client/register` and `POST /api/client/metrics` as
//! unleash-server 8.2.0 runs it (AJV, first error only), with its message wording.
//!
//! AJV stops at the first failing keyword; `required` is checked before `properties`, and
//! properties in schema order. A `oneOf` failure reports each branch's error and then the
//! `oneOf` error itself, which is why a bad date gives three entries.

use serde_json::{Map, Value};

/// One entry of a `BadDataError`'s `details`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Detail {
    pub(crate) path: String,
    pub(crate) message: String,
}

type Check = Result<(), Vec<Detail>>;

fn fail(path: &str, message: String) -> Check {
    Err(vec![Detail {
        path: path.to_owned(),
        message,
    }])
}

fn required(path: &str) -> Check {
    fail(
        path,
        format!("The `{path}` property is required. It was not present on the data you sent."),
    )
}

fn must(path: &str, what: &str, value: &Value) -> Check {
    fail(
        path,
        format!("The `{path}` property must {what}. You sent {value}."),
    )
}

fn check_string(path: &str, value: &Value, min: Option<usize>, max: Option<usize>) -> Check {
    let Some(text) = value.as_str() else {
        return must(path, "be string", value);
    };
    let chars = text.chars().count();
    if let Some(min) = min
        && chars < min
    {
        return must(
            path,
            &format!("NOT have fewer than {min} characters"),
            value,
        );
    }
    if let Some(max) = max
        && chars > max
    {
        return must(path, &format!("NOT have more than {max} characters"), value);
    }
    Ok(())
}

fn is_integer(value: &Value) -> bool {
    value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
}

fn check_number(path: &str, value: &Value, integer: bool, minimum: Option<f64>) -> Check {
    let Some(number) = value.as_f64() else {
        return must(
            path,
            if integer { "be integer" } else { "be number" },
            value,
        );
    };
    if integer && !is_integer(value) {
        return must(path, "be integer", value);
    }
    if let Some(minimum) = minimum
        && number < minimum
    {
        return must(path, &format!("be >= {minimum}"), value);
    }
    Ok(())
}

/// `oneOf: [{type: string, format: date-time}, {type: integer|number}]`.
fn check_date(path: &str, value: &Value, numeric: &str) -> Check {
    let string_ok = value
        .as_str()
        .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok());
    let number_ok = if numeric == "integer" {
        value.is_number() && is_integer(value)
    } else {
        value.is_number()
    };
    if string_ok || number_ok {
        return Ok(());
    }
    let first = if value.is_string() {
        format!("The `{path}` property must match format \"date-time\". You sent {value}.")
    } else {
        format!("The `{path}` property must be string. You sent {value}.")
    };
    Err(vec![
        Detail {
            path: path.to_owned(),
            message: first,
        },
        Detail {
            path: path.to_owned(),
            message: format!("The `{path}` property must be {numeric}. You sent {value}."),
        },
        Detail {
            path: path.to_owned(),
            message: format!(
                "The \"{path}\" property must match exactly one schema in oneOf. The data you provided matches more than one option in the schema. These options are mutually exclusive. Please refer back to the schema and remove any excess properties."
            ),
        },
    ])
}

fn object<'a>(path: &str, value: &'a Value) -> Result<&'a Map<String, Value>, Vec<Detail>> {
    value.as_object().ok_or_else(|| {
        vec![Detail {
            path: path.to_owned(),
            message: format!("The `{path}` property must be object. You sent {value}."),
        }]
    })
}

/// The optional string properties both schemas share, in schema order.
fn check_sdk_fields(body: &Map<String, Value>) -> Check {
    for (name, max) in [
        ("instanceId", None),
        ("sdkVersion", None),
        ("platformName", None),
        ("platformVersion", None),
        ("yggdrasilVersion", None),
        ("specVersion", None),
        ("sdkFlavor", Some(256)),
        ("sdkFlavorVersion", Some(32)),
    ] {
        match body.get(name) {
            None => {}
            // 8.2.0 accepts a null yggdrasilVersion (the Rust SDK sends one).
            Some(Value::Null) if name == "yggdrasilVersion" => {}
            Some(value) => check_string(&format!("/body/{name}"), value, None, max)?,
        }
    }
    Ok(())
}

/// `clientApplicationSchema`.
pub(crate) fn register(body: &Value) -> Check {
    let body = object("/body", body)?;
    for name in ["appName", "interval", "started", "strategies"] {
        if !body.contains_key(name) {
            return required(&format!("/body/{name}"));
        }
    }
    check_string("/body/appName", &body["appName"], Some(1), None)?;
    check_sdk_fields(body)?;
    check_number("/body/interval", &body["interval"], false, Some(0.0))?;
    check_date("/body/started", &body["started"], "number")?;
    if !body["strategies"].is_array() {
        return must("/body/strategies", "be array", &body["strategies"]);
    }
    // Non-string strategy names are dropped by the server, not rejected.
    Ok(())
}

/// `clientMetricsSchema`.
pub(crate) fn metrics(body: &Value) -> Check {
    let body = object("/body", body)?;
    if !body.contains_key("appName") {
        return required("/body/appName");
    }
    check_string("/body/appName", &body["appName"], Some(1), None)?;
    check_sdk_fields(body)?;
    let bucket = match body.get("bucket") {
        None | Some(Value::Null) => return Ok(()),
        Some(bucket) => object("/body/bucket", bucket)?,
    };
    for name in ["start", "stop", "toggles"] {
        if !bucket.contains_key(name) {
            return required(&format!("/body/bucket/{name}"));
        }
    }
    check_date("/body/bucket/start", &bucket["start"], "integer")?;
    check_date("/body/bucket/stop", &bucket["stop"], "integer")?;
    let toggles = object("/body/bucket/toggles", &bucket["toggles"])?;
    for (flag, counts) in toggles {
        let base = format!("/body/bucket/toggles/{flag}");
        let counts = object(&base, counts)?;
        if let Some(yes) = counts.get("yes") {
            check_number(&format!("{base}/yes"), yes, false, Some(0.0))?;
        }
        if let Some(no) = counts.get("no") {
            check_number(&format!("{base}/no"), no, true, Some(0.0))?;
        }
        match counts.get("variants") {
            None | Some(Value::Null) => {}
            Some(variants) => {
                let variants = object(&format!("{base}/variants"), variants)?;
                for (name, count) in variants {
                    check_number(&format!("{base}/variants/{name}"), count, true, Some(0.0))?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn register_missing_interval_is_the_first_error() {
        let details =
            register(&json!({"appName":"x","instanceId":"i","strategies":[]})).unwrap_err();
        assert_eq!(
            details,
            [Detail {
                path: "/body/interval".into(),
                message: "The `/body/interval` property is required. It was not present on the data you sent.".into()
            }]
        );
    }

    #[test]
    fn negative_count() {
        let details = metrics(&json!({"appName":"x","bucket":{"start":"2026-11-22T09:00:00Z","stop":"2026-11-22T09:01:00Z","toggles":{"my-flag":{"yes":-1,"no":0}}}})).unwrap_err();
        assert_eq!(
            details[0].message,
            "The `/body/bucket/toggles/my-flag/yes` property must be >= 0. You sent -1."
        );
    }

    #[test]
    fn bad_date_gives_three_entries() {
        let details = metrics(&json!({"appName":"x","bucket":{"start":"not-a-date","stop":"2026-11-22T09:01:00Z","toggles":{}}})).unwrap_err();
        assert_eq!(details.len(), 3);
        assert_eq!(
            details[0].message,
            "The `/body/bucket/start` property must match format \"date-time\". You sent \"not-a-date\"."
        );
        assert_eq!(
            details[1].message,
            "The `/body/bucket/start` property must be integer. You sent \"not-a-date\"."
        );
        assert!(details.iter().all(|d| d.path == "/body/bucket/start"));
    }

    #[test]
    fn lenient_parts() {
        assert!(metrics(&json!({"appName":"x"})).is_ok());
        assert!(metrics(&json!({"appName":"x","bucket":null})).is_ok());
        assert!(
            metrics(&json!({"appName":"x","bucket":{"start":1,"stop":2,"toggles":{"f":{}}}}))
                .is_ok()
        );
        assert!(register(&json!({"appName":"x","strategies":[1,"a"],"started":"2026-11-22T09:00:00.000Z","interval":15000,"yggdrasilVersion":null})).is_ok());
        assert!(metrics(&json!({"appName":""})).is_err());
        assert!(
            metrics(
                &json!({"appName":"x","bucket":{"start":1,"stop":2,"toggles":{"f":{"no":1.5}}}})
            )
            .is_err()
        );
    }
}
