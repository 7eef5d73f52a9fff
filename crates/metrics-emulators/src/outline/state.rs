//! The emulated server's state and the rules the real server applies to it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv6Addr;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::{Map, Value, json};

/// The ciphers `shadowbox` accepts.
pub(crate) const CIPHERS: [&str; 4] = [
    "chacha20-ietf-poly1305",
    "aes-256-gcm",
    "aes-192-gcm",
    "aes-128-gcm",
];

/// The longest `since` the server answers: 300 s step × 10 999 points.
pub(crate) const MAX_SINCE_SECONDS: f64 = 3_299_700.0;

/// An access key as the emulator stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EmulatedAccessKey {
    /// The id.
    pub id: String,
    /// The name.
    pub name: String,
    /// The Shadowsocks password.
    pub password: String,
    /// The port.
    pub port: u16,
    /// The cipher.
    pub method: String,
    /// The key's own data limit in bytes.
    pub data_limit: Option<u64>,
    /// The host in its access URL (the hostname at creation time).
    pub host: String,
}

/// Experimental metrics for one access key, as `GET /experimental/server/metrics` reports
/// them. Keys with transfer data and no explicit metrics get values derived from their
/// transfer bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EmulatedKeyMetrics {
    /// `dataTransferred.bytes`.
    pub data_bytes: f64,
    /// `tunnelTime.seconds`.
    pub tunnel_seconds: f64,
    /// `connection.lastTrafficSeen`, Unix seconds.
    pub last_traffic_seen: Option<f64>,
    /// `connection.peakDeviceCount.data`.
    pub peak_devices: u64,
    /// `connection.peakDeviceCount.timestamp`, Unix seconds.
    pub peak_timestamp: Option<f64>,
}

/// One entry of `server.locations` in the experimental metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct EmulatedLocation {
    /// ISO country code (`XL` without a GeoIP database); `None` omits the field.
    pub location: Option<String>,
    /// Autonomous system number (`null` when `None`).
    pub asn: Option<u64>,
    /// Autonomous system organisation (`null` when `None`).
    pub as_org: Option<String>,
    /// `dataTransferred.bytes`.
    pub data_bytes: f64,
    /// `tunnelTime.seconds`.
    pub tunnel_seconds: f64,
}

/// A small, fast generator for passwords and ids; seeded from the OS per emulator.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        );
        Self(hasher.finish())
    }

    /// splitmix64.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// `len` random ASCII letters and digits, as the server's default passwords.
    pub(crate) fn alphanumeric(&mut self, len: usize) -> String {
        const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..len)
            .map(|_| {
                let index = usize::try_from(self.next_u64() % CHARS.len() as u64).unwrap_or(0);
                char::from(CHARS[index])
            })
            .collect()
    }

    pub(crate) fn uuid(&mut self) -> String {
        let a = self.next_u64();
        let b = self.next_u64();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0x0fff,
            ((b >> 48) & 0x3fff) | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }
}

/// Why a request failed: status, restify code, message.
pub(crate) type Failure = (u16, &'static str, String);

fn fail(status: u16, code: &'static str, message: impl Into<String>) -> Failure {
    (status, code, message.into())
}

pub(crate) struct State {
    pub(crate) prefix: String,
    pub(crate) name: String,
    pub(crate) server_id: String,
    pub(crate) created_ms: u64,
    pub(crate) version: String,
    pub(crate) metrics_enabled: bool,
    pub(crate) default_limit: Option<u64>,
    pub(crate) port_for_new_keys: u16,
    pub(crate) hostname: String,
    /// Keys in creation order (by sequence number), with an index by id.
    keys: BTreeMap<u64, EmulatedAccessKey>,
    key_index: HashMap<String, u64>,
    passwords: HashSet<String>,
    next_seq: u64,
    next_id: u64,
    pub(crate) transfer: BTreeMap<String, u64>,
    pub(crate) key_metrics: HashMap<String, EmulatedKeyMetrics>,
    pub(crate) locations: Option<Vec<EmulatedLocation>>,
    pub(crate) server_metrics_available: bool,
    pub(crate) prometheus_down: bool,
    pub(crate) unavailable_ports: HashSet<u16>,
    rng: Rng,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

impl State {
    pub(crate) fn new(prefix: String) -> Self {
        let mut rng = Rng::new();
        let server_id = rng.uuid();
        let port = 1024 + u16::try_from(rng.next_u64() % 64_000).unwrap_or(0);
        Self {
            prefix,
            name: "Outline Server".to_owned(),
            server_id,
            created_ms: now_ms(),
            version: "1.12.3".to_owned(),
            metrics_enabled: false,
            default_limit: None,
            port_for_new_keys: port,
            hostname: "127.0.0.1".to_owned(),
            keys: BTreeMap::new(),
            key_index: HashMap::new(),
            passwords: HashSet::new(),
            next_seq: 0,
            next_id: 0,
            transfer: BTreeMap::new(),
            key_metrics: HashMap::new(),
            locations: None,
            server_metrics_available: true,
            prometheus_down: false,
            unavailable_ports: HashSet::new(),
            rng,
        }
    }

    pub(crate) fn key(&self, id: &str) -> Option<&EmulatedAccessKey> {
        self.key_index.get(id).and_then(|seq| self.keys.get(seq))
    }

    fn key_mut(&mut self, id: &str) -> Option<&mut EmulatedAccessKey> {
        let seq = self.key_index.get(id)?;
        self.keys.get_mut(seq)
    }

    pub(crate) fn key_count(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &EmulatedAccessKey> {
        self.keys.values()
    }

    fn not_found(id: &str) -> Failure {
        fail(404, "NotFound", format!("Access key \"{id}\" not found"))
    }

    /// The next counter id; failed creates burn ids too, as on the real server.
    pub(crate) fn take_id(&mut self) -> String {
        let id = self.next_id.to_string();
        self.next_id += 1;
        id
    }

    fn unique_password(&mut self) -> String {
        loop {
            let password = self.rng.alphanumeric(22);
            if !self.passwords.contains(&password) {
                return password;
            }
        }
    }

    /// Inserts a key with server defaults; the id must be free.
    pub(crate) fn insert_key(
        &mut self,
        id: String,
        name: String,
        method: Option<String>,
        password: Option<String>,
        port: Option<u16>,
        limit: Option<u64>,
    ) -> &EmulatedAccessKey {
        let password = password.unwrap_or_else(|| self.unique_password());
        self.passwords.insert(password.clone());
        let key = EmulatedAccessKey {
            id: id.clone(),
            name,
            password,
            port: port.unwrap_or(self.port_for_new_keys),
            method: method.unwrap_or_else(|| CIPHERS[0].to_owned()),
            data_limit: limit,
            host: self.hostname.clone(),
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        self.key_index.insert(id, seq);
        self.keys.entry(seq).or_insert(key)
    }

    pub(crate) fn remove_key(&mut self, id: &str) -> Option<EmulatedAccessKey> {
        let seq = self.key_index.remove(id)?;
        let key = self.keys.remove(&seq)?;
        self.passwords.remove(&key.password);
        Some(key)
    }

    pub(crate) fn server_json(&self) -> Value {
        let mut server = json!({
            "name": self.name,
            "serverId": self.server_id,
            "metricsEnabled": self.metrics_enabled,
            "createdTimestampMs": self.created_ms,
            "version": self.version,
        });
        if let (Some(limit), Some(object)) = (self.default_limit, server.as_object_mut()) {
            object.insert("accessKeyDataLimit".into(), json!({ "bytes": limit }));
        }
        if let Some(object) = server.as_object_mut() {
            object.insert("portForNewAccessKeys".into(), json!(self.port_for_new_keys));
            object.insert("hostnameForAccessKeys".into(), json!(self.hostname));
        }
        server
    }

    // --- Route handlers. `params` are the merged body fields (and path params). ---

    pub(crate) fn rename_server(&mut self, params: &Map<String, Value>) -> Result<(), Failure> {
        match params.get("name") {
            None | Some(Value::Null) => Err(missing("name")),
            Some(Value::String(name)) if name.is_empty() => Err(missing("name")),
            Some(Value::String(name)) if name.encode_utf16().count() <= 100 => {
                self.name.clone_from(name);
                Ok(())
            }
            Some(other) => Err(fail(
                409,
                "InvalidArgument",
                format!(
                    "Requested server name should be a string <= 100 characters long.  Got {}",
                    js_string(other)
                ),
            )),
        }
    }

    pub(crate) fn set_hostname(&mut self, params: &Map<String, Value>) -> Result<(), Failure> {
        let hostname = match params.get("hostname") {
            None | Some(Value::Null) => {
                return Err(fail(400, "MissingParameter", "hostname must be provided"));
            }
            Some(Value::String(h)) if h.is_empty() => {
                return Err(fail(400, "MissingParameter", "hostname must be provided"));
            }
            Some(Value::String(h)) => h,
            Some(other) => {
                return Err(fail(
                    400,
                    "InvalidArgument",
                    format!(
                        "Expected hostname to be a string, instead got {} of type {}",
                        js_string(other),
                        js_typeof(other)
                    ),
                ));
            }
        };
        if !is_valid_host(hostname) {
            return Err(fail(
                400,
                "InvalidArgument",
                format!("Hostname {hostname} isn't a valid hostname or IP address"),
            ));
        }
        self.hostname.clone_from(hostname);
        Ok(())
    }

    pub(crate) fn set_port_for_new_keys(
        &mut self,
        params: &Map<String, Value>,
    ) -> Result<(), Failure> {
        let Some(value) = params.get("port").filter(|v| !v.is_null()) else {
            return Err(missing("port"));
        };
        let port = self.check_port(value)?;
        self.port_for_new_keys = port;
        Ok(())
    }

    /// The type, range and availability checks of a `port` parameter.
    fn check_port(&self, value: &Value) -> Result<u16, Failure> {
        let number = port_type(value)?;
        let port = port_range(number)?;
        self.port_available(port)?;
        Ok(port)
    }

    fn port_available(&self, port: u16) -> Result<(), Failure> {
        if self.unavailable_ports.contains(&port) {
            return Err(fail(409, "Conflict", format!("Port {port} is unavailable")));
        }
        Ok(())
    }

    pub(crate) fn set_default_limit(&mut self, params: &Map<String, Value>) -> Result<(), Failure> {
        // A body without `limit` is accepted and clears the limit: the real server's quirk.
        self.default_limit = data_limit(params)?;
        Ok(())
    }

    pub(crate) fn set_key_limit(
        &mut self,
        id: &str,
        params: &Map<String, Value>,
    ) -> Result<(), Failure> {
        let limit = data_limit(params)?;
        let key = self.key_mut(id).ok_or_else(|| Self::not_found(id))?;
        key.data_limit = limit;
        Ok(())
    }

    pub(crate) fn remove_key_limit(&mut self, id: &str) -> Result<(), Failure> {
        let key = self.key_mut(id).ok_or_else(|| Self::not_found(id))?;
        key.data_limit = None;
        Ok(())
    }

    pub(crate) fn rename_key(
        &mut self,
        id: &str,
        params: &Map<String, Value>,
    ) -> Result<(), Failure> {
        let name = match params.get("name") {
            None | Some(Value::Null) => return Err(missing("name")),
            Some(Value::String(n)) if n.is_empty() => return Err(missing("name")),
            Some(Value::String(n)) => n.clone(),
            Some(_) => {
                return Err(fail(
                    400,
                    "InvalidArgument",
                    "Parameter `name` must be of type string",
                ));
            }
        };
        let key = self.key_mut(id).ok_or_else(|| Self::not_found(id))?;
        key.name = name;
        Ok(())
    }

    /// `POST /access-keys` (`id` = `None`) and `PUT /access-keys/{id}`.
    pub(crate) fn create_key(
        &mut self,
        id: Option<&str>,
        params: &Map<String, Value>,
    ) -> Result<Value, Failure> {
        if id.is_none() && params.contains_key("id") {
            return Err(fail(
                400,
                "InvalidArgument",
                "Parameter `id` is not allowed",
            ));
        }
        // Type checks run before an id is taken...
        let name = optional_string(params, "name", "name")?;
        let method = optional_string(params, "method", "encryptionMethod")?;
        let password = optional_string(params, "password", "password")?;
        let port = match params.get("port").filter(|v| !v.is_null()) {
            None => None,
            Some(value) => Some(port_type(value)?),
        };
        let limit = data_limit(params)?;
        let id = match id {
            Some(id) => {
                if self.key_index.contains_key(id) {
                    return Err(fail(
                        409,
                        "Conflict",
                        format!("Access key \"{id}\" conflict"),
                    ));
                }
                id.to_owned()
            }
            // ...the rest after, so these failures burn ids.
            None => self.take_id(),
        };
        if let Some(method) = &method
            && !CIPHERS.contains(&method.as_str())
        {
            return Err(fail(
                400,
                "InvalidArgument",
                format!("cipher \"{method}\" is not valid"),
            ));
        }
        let port = match port {
            None => None,
            Some(number) => {
                let port = port_range(number)?;
                self.port_available(port)?;
                Some(port)
            }
        };
        if let Some(password) = &password
            && self.passwords.contains(password)
        {
            return Err(fail(
                409,
                "Conflict",
                format!(
                    "Access key {id} has the same password. Please specify a unique password for each access key"
                ),
            ));
        }
        let key = self.insert_key(id, name.unwrap_or_default(), method, password, port, limit);
        Ok(key_json(key))
    }

    pub(crate) fn delete_key(&mut self, id: &str) -> Result<(), Failure> {
        self.remove_key(id)
            .map(drop)
            .ok_or_else(|| Self::not_found(id))
    }

    pub(crate) fn get_key(&self, id: &str) -> Result<Value, Failure> {
        self.key(id)
            .map(key_json)
            .ok_or_else(|| Self::not_found(id))
    }

    pub(crate) fn list_keys(&self) -> Value {
        json!({ "accessKeys": self.keys.values().map(key_json).collect::<Vec<_>>() })
    }

    pub(crate) fn set_metrics_enabled(
        &mut self,
        params: &Map<String, Value>,
    ) -> Result<(), Failure> {
        match params.get("metricsEnabled") {
            None | Some(Value::Null) => Err(missing("metricsEnabled")),
            Some(Value::Bool(enabled)) => {
                self.metrics_enabled = *enabled;
                Ok(())
            }
            Some(_) => Err(fail(
                400,
                "InvalidArgument",
                "Parameter `metricsEnabled` must be a boolean",
            )),
        }
    }

    pub(crate) fn transfer_json(&self) -> Result<Vec<u8>, Failure> {
        if self.prometheus_down {
            return Err(internal());
        }
        #[derive(serde::Serialize)]
        struct Body<'a> {
            #[serde(rename = "bytesTransferredByUserId")]
            bytes: &'a BTreeMap<String, u64>,
        }
        serde_json::to_vec(&Body {
            bytes: &self.transfer,
        })
        .map_err(|_| internal())
    }

    pub(crate) fn server_metrics_json(&self, since: Option<&str>) -> Result<Value, Failure> {
        let Some(since) = since else {
            return Err(missing("since"));
        };
        let seconds = parse_since(since).ok_or_else(|| {
            fail(
                400,
                "InvalidArgument",
                format!("Invalid time range: {since}"),
            )
        })?;
        // The server hands these to Prometheus, which fails: a bare 500.
        if seconds.is_nan() || seconds <= 0.0 || seconds > MAX_SINCE_SECONDS || self.prometheus_down
        {
            return Err(internal());
        }
        Ok(self.experimental_metrics())
    }

    /// The experimental metrics: explicit per-key metrics, or values derived from transfer
    /// bytes, with floats and nulls where the real server has them. The window does not
    /// change the values.
    fn experimental_metrics(&self) -> Value {
        #[allow(clippy::cast_precision_loss, reason = "emulated float metrics")]
        let now = now_ms() as f64 / 1000.0;
        let step = (now / 300.0).floor() * 300.0;
        let mut per_key: Vec<(String, EmulatedKeyMetrics)> = Vec::new();
        for (id, bytes) in &self.transfer {
            if self.key_metrics.contains_key(id) || *bytes == 0 {
                continue;
            }
            #[allow(clippy::cast_precision_loss, reason = "emulated float metrics")]
            let data = *bytes as f64 * 1.000_013_7;
            // About 50 kB/s while connected, and one more device per day of tunnel time.
            let tunnel = data / 50_000.0 + 0.053;
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "small positive value"
            )]
            let devices = ((tunnel / 86_400.0).ceil() as u64).clamp(1, 16);
            per_key.push((
                id.clone(),
                EmulatedKeyMetrics {
                    data_bytes: data,
                    tunnel_seconds: tunnel,
                    last_traffic_seen: Some(now),
                    peak_devices: devices,
                    peak_timestamp: Some(step),
                },
            ));
        }
        let mut explicit: Vec<_> = self.key_metrics.iter().collect();
        explicit.sort_by(|a, b| a.0.cmp(b.0));
        per_key.extend(explicit.into_iter().map(|(id, m)| (id.clone(), *m)));

        let locations = self.locations.clone().unwrap_or_else(|| {
            if per_key.is_empty() {
                Vec::new()
            } else {
                vec![EmulatedLocation {
                    location: Some("XL".to_owned()),
                    asn: None,
                    as_org: None,
                    data_bytes: per_key.iter().map(|(_, m)| m.data_bytes).sum(),
                    tunnel_seconds: per_key.iter().map(|(_, m)| m.tunnel_seconds).sum(),
                }]
            }
        });
        let data: f64 = locations.iter().map(|l| l.data_bytes).sum();
        let tunnel: f64 = locations.iter().map(|l| l.tunnel_seconds).sum();
        let (current, peak) = if data > 0.0 {
            let current = data / 2_592_000.0 * 1.618;
            (
                json!({ "data": { "bytes": num(current) }, "timestamp": num(now) }),
                json!({ "data": { "bytes": num(current * 2.25) }, "timestamp": num(step) }),
            )
        } else {
            (
                json!({ "data": { "bytes": 0 }, "timestamp": null }),
                json!({ "data": { "bytes": 0 }, "timestamp": null }),
            )
        };
        let locations: Vec<Value> = locations
            .iter()
            .map(|l| {
                let mut entry = Map::new();
                if let Some(location) = &l.location {
                    entry.insert("location".into(), json!(location));
                }
                entry.insert("asn".into(), json!(l.asn));
                entry.insert("asOrg".into(), json!(l.as_org));
                entry.insert(
                    "dataTransferred".into(),
                    json!({ "bytes": num(l.data_bytes) }),
                );
                entry.insert(
                    "tunnelTime".into(),
                    json!({ "seconds": num(l.tunnel_seconds) }),
                );
                Value::Object(entry)
            })
            .collect();
        let access_keys: Vec<Value> = per_key
            .iter()
            .map(|(id, m)| {
                json!({
                    "accessKeyId": js_parse_int(id),
                    "dataTransferred": { "bytes": num(m.data_bytes) },
                    "tunnelTime": { "seconds": num(m.tunnel_seconds) },
                    "connection": {
                        "lastTrafficSeen": m.last_traffic_seen.map(num),
                        "peakDeviceCount": {
                            "data": m.peak_devices,
                            "timestamp": m.peak_timestamp.map(num),
                        },
                    },
                })
            })
            .collect();
        json!({
            "server": {
                "tunnelTime": { "seconds": num(tunnel) },
                "dataTransferred": { "bytes": num(data) },
                "bandwidth": { "current": current, "peak": peak },
                "locations": locations,
            },
            "accessKeys": access_keys,
        })
    }
}

pub(crate) fn internal() -> Failure {
    fail(500, "InternalServer", "")
}

fn missing(name: &str) -> Failure {
    fail(
        400,
        "MissingParameter",
        format!("Parameter `{name}` is missing"),
    )
}

fn optional_string(
    params: &Map<String, Value>,
    name: &str,
    shown_as: &str,
) -> Result<Option<String>, Failure> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(fail(
            400,
            "InvalidArgument",
            format!(
                "Expected a string for {shown_as}, instead got {} of type {}",
                js_string(other),
                js_typeof(other)
            ),
        )),
    }
}

fn port_type(value: &Value) -> Result<f64, Failure> {
    match value.as_f64() {
        Some(number) if value.is_number() => Ok(number),
        _ => Err(fail(
            400,
            "InvalidArgument",
            format!(
                "Expected a number for port, instead got {} of type {}",
                js_string(value),
                js_typeof(value)
            ),
        )),
    }
}

fn port_range(number: f64) -> Result<u16, Failure> {
    if number.fract() == 0.0 && (1.0..=65535.0).contains(&number) {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "checked: integral and within 1..=65535"
        )]
        return Ok(number as u16);
    }
    Err(fail(
        400,
        "InvalidArgument",
        format!(
            "Port {} is invalid: must be an integer in range [0, 65353]",
            js_number(number)
        ),
    ))
}

/// `limit` → `Some(bytes)`; absent → `None` (which clears a limit).
fn data_limit(params: &Map<String, Value>) -> Result<Option<u64>, Failure> {
    let Some(limit) = params.get("limit") else {
        return Ok(None);
    };
    let bytes = limit.get("bytes").and_then(|b| {
        b.as_u64().or_else(|| {
            b.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1.8e19)
                .map(|f| {
                    #[allow(
                        clippy::cast_possible_truncation,
                        clippy::cast_sign_loss,
                        reason = "checked: integral, non-negative, in range"
                    )]
                    let bytes = f as u64;
                    bytes
                })
        })
    });
    match bytes {
        Some(bytes) => Ok(Some(bytes)),
        None => Err(fail(
            400,
            "InvalidArgument",
            "`limit.bytes` must be an non-negative integer",
        )),
    }
}

/// The JSON of a key, as the server renders it.
pub(crate) fn key_json(key: &EmulatedAccessKey) -> Value {
    let mut object = Map::new();
    object.insert("id".into(), json!(key.id));
    object.insert("name".into(), json!(key.name));
    object.insert("password".into(), json!(key.password));
    object.insert("port".into(), json!(key.port));
    object.insert("method".into(), json!(key.method));
    if let Some(limit) = key.data_limit {
        object.insert("dataLimit".into(), json!({ "bytes": limit }));
    }
    object.insert("accessUrl".into(), json!(access_url(key)));
    Value::Object(object)
}

/// `ss://<base64url(method:password)>@host:port/?outline=1`, IPv6 bracketed and expanded.
pub(crate) fn access_url(key: &EmulatedAccessKey) -> String {
    let user_info = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{}:{}", key.method, key.password));
    let host = match key.host.trim_matches(['[', ']']).parse::<Ipv6Addr>() {
        Ok(ip) => {
            let segments: Vec<String> = ip.segments().iter().map(|s| format!("{s:x}")).collect();
            format!("[{}]", segments.join(":"))
        }
        Err(_) => key.host.clone(),
    };
    format!("ss://{user_info}@{host}:{}/?outline=1", key.port)
}

/// A float as JavaScript's `JSON.stringify` writes it: integral values without `.0`.
fn num(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        #[allow(
            clippy::cast_possible_truncation,
            reason = "checked: integral and small"
        )]
        return json!(value as i64);
    }
    json!(value)
}

fn js_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e21 {
        format!("{value:.0}")
    } else {
        value.to_string()
    }
}

/// JavaScript's `String(value)`.
fn js_string(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.as_f64().map_or_else(|| n.to_string(), js_number),
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|v| {
                if v.is_null() {
                    String::new()
                } else {
                    js_string(v)
                }
            })
            .collect::<Vec<_>>()
            .join(","),
        Value::Object(_) => "[object Object]".to_owned(),
    }
}

/// JavaScript's `typeof value`.
fn js_typeof(value: &Value) -> &'static str {
    match value {
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Null | Value::Array(_) | Value::Object(_) => "object",
    }
}

/// JavaScript's `parseInt(id)`: leading whitespace, a sign and digits; `null` for NaN.
fn js_parse_int(id: &str) -> Value {
    let text = id.trim_start();
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let end = digits
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    let digits = &digits[..end];
    if digits.is_empty() {
        return Value::Null;
    }
    match digits.parse::<i64>() {
        Ok(n) => json!(if negative { -n } else { n }),
        Err(_) => {
            let f: f64 = digits.parse().unwrap_or(f64::INFINITY);
            json!(if negative { -f } else { f })
        }
    }
}

/// The server's `since` reading: the last character is the unit, the rest goes through
/// JavaScript's `Number()` (empty = 0). `None` = 400 "Invalid time range".
pub(crate) fn parse_since(since: &str) -> Option<f64> {
    let unit = since.chars().last()?;
    let scale = match unit {
        's' => 1.0,
        'h' => 3600.0,
        'd' => 86_400.0,
        'w' => 604_800.0,
        _ => return None,
    };
    let number = since[..since.len() - 1].trim();
    let value = if number.is_empty() {
        0.0
    } else if number == "Infinity" || number == "+Infinity" {
        f64::INFINITY
    } else if number == "-Infinity" {
        f64::NEG_INFINITY
    } else if number
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
    {
        number.parse::<f64>().ok()?
    } else {
        return None;
    };
    Some(value * scale)
}

/// The server's hostname check: an IP address, or dot-separated labels of letters, digits
/// and hyphens.
fn is_valid_host(host: &str) -> bool {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    if host.len() > 253 {
        return false;
    }
    host.trim_end_matches('.').split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_int_like_javascript() {
        assert_eq!(js_parse_int("12"), json!(12));
        assert_eq!(js_parse_int("12abc"), json!(12));
        assert_eq!(js_parse_int("-5"), json!(-5));
        assert_eq!(js_parse_int("alpha-key"), Value::Null);
        assert_eq!(js_parse_int(""), Value::Null);
    }

    #[test]
    fn since_like_the_server() {
        assert_eq!(parse_since("1h"), Some(3600.0));
        assert_eq!(parse_since("1.5h"), Some(5400.0));
        assert_eq!(parse_since("d"), Some(0.0));
        assert_eq!(parse_since("-1h"), Some(-3600.0));
        assert_eq!(parse_since("1m"), None);
        assert_eq!(parse_since("abc"), None);
        assert_eq!(parse_since("2026-10-23T09:41:00Z"), None);
    }

    #[test]
    fn ipv6_access_urls_are_expanded() {
        let key = EmulatedAccessKey {
            id: "9".into(),
            name: String::new(),
            password: "wi0fNDf9i8XXqacMrbz53w".into(),
            port: 23456,
            method: "chacha20-ietf-poly1305".into(),
            data_limit: None,
            host: "2001:db8::1".into(),
        };
        assert_eq!(
            access_url(&key),
            "ss://Y2hhY2hhMjAtaWV0Zi1wb2x5MTMwNTp3aTBmTkRmOWk4WFhxYWNNcmJ6NTN3@[2001:db8:0:0:0:0:0:1]:23456/?outline=1"
        );
    }

    #[test]
    fn hosts() {
        assert!(is_valid_host("example.com"));
        assert!(is_valid_host("127.0.0.1"));
        assert!(is_valid_host("2001:db8::1"));
        assert!(!is_valid_host("bad host!"));
        assert!(!is_valid_host("-x.com"));
    }
}
