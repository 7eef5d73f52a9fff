//! The Outline management API's wire types, as the real server sends them.
//!
//! Where the upstream OpenAPI file and the server disagree, these follow the server: byte
//! counts are `u64` (they exceed 2³²), ids are strings, the experimental metrics are floats
//! with nullable timestamps, `asn`, `asOrg` and `accessKeyId`, and fields the spec omits
//! (`version`, `accessKeyDataLimit`, `dataLimit`, …) are here. Unknown fields are ignored so
//! a newer server does not break this client.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use metrics_core::digits::{POWERS_OF_TEN, digit_run, run_value};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use metrics_core::{Error, Result};

use crate::BACKEND;

/// A data limit: `{"bytes": N}`. Always sent wrapped as `{"limit": {"bytes": N}}` — a body
/// without the `limit` wrapper makes the server answer 204 and silently *remove* the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DataLimit {
    /// The limit in bytes over the rolling 30-day window; 0 cuts the key off.
    pub bytes: u64,
}

/// `GET /server`: the server's settings.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Server {
    /// The display name (`"Outline Server"` by default).
    pub name: String,
    /// A UUID identifying the server.
    pub server_id: String,
    /// Whether the operator opted in to sharing anonymous usage metrics with Jigsaw. It does
    /// not gate the local metrics endpoints.
    #[serde(default)]
    pub metrics_enabled: bool,
    /// When the server was installed, in Unix milliseconds.
    pub created_timestamp_ms: u64,
    /// The server version (`"1.12.3"`; `"dev"` on unstamped builds). Absent on very old
    /// servers.
    #[serde(default)]
    pub version: Option<String>,
    /// The default data limit for keys without their own; absent when none is set.
    #[serde(default)]
    pub access_key_data_limit: Option<DataLimit>,
    /// The port new access keys get.
    #[serde(default)]
    pub port_for_new_access_keys: Option<u16>,
    /// The host name or IP address put into new keys' access URLs.
    #[serde(default)]
    pub hostname_for_access_keys: Option<String>,
}

impl Server {
    /// [`Server::created_timestamp_ms`] as a date.
    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        i64::try_from(self.created_timestamp_ms)
            .ok()
            .and_then(DateTime::from_timestamp_millis)
    }

    /// Whether this server version has `GET /experimental/server/metrics` in the shape this
    /// client reads (1.12.0 and later, and unstamped `dev` builds). `None` when the version
    /// is absent or not a version number; then just try, and treat
    /// [`Error::Unsupported`] as "no".
    pub fn supports_server_metrics(&self) -> Option<bool> {
        let version = self.version.as_deref()?.trim();
        if version == "dev" {
            return Some(true);
        }
        let core = version.split(['-', '+']).next().unwrap_or_default();
        let mut parts = core.split('.').map(str::parse::<u64>);
        let major = parts.next()?.ok()?;
        let minor = parts.next().unwrap_or(Ok(0)).ok()?;
        Some((major, minor) >= (1, 12))
    }
}

/// An access key: one set of Shadowsocks credentials.
///
/// `Debug` hides `password` and `access_url`, which let anyone use the key.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AccessKey {
    /// The id: a counter decimal (`"0"`, `"1"`, …) for keys the server numbered, any
    /// string for keys created with [`AccessKeys::create_with_id`](crate::AccessKeys::create_with_id).
    pub id: String,
    /// The display name (`""` by default).
    #[serde(default)]
    pub name: String,
    /// The Shadowsocks password.
    pub password: String,
    /// The Shadowsocks port.
    pub port: u16,
    /// The cipher, normally one of [`Cipher`]'s names.
    pub method: String,
    /// The key's own data limit; `None` when it has none (the server default, if any,
    /// applies then and is not copied here).
    #[serde(default)]
    pub data_limit: Option<DataLimit>,
    /// The `ss://` URL a client app imports.
    pub access_url: String,
}

impl AccessKey {
    /// The cipher, if it is one this client knows.
    pub fn cipher(&self) -> Option<Cipher> {
        self.method.parse().ok()
    }
}

impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("password", &"***")
            .field("port", &self.port)
            .field("method", &self.method)
            .field("data_limit", &self.data_limit)
            .field("access_url", &"ss://***")
            .finish()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AccessKeyList {
    pub(crate) access_keys: Vec<AccessKey>,
}

/// A Shadowsocks cipher the server accepts for new keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cipher {
    /// `chacha20-ietf-poly1305`, the server's default.
    Chacha20IetfPoly1305,
    /// `aes-256-gcm`.
    Aes256Gcm,
    /// `aes-192-gcm`.
    Aes192Gcm,
    /// `aes-128-gcm`.
    Aes128Gcm,
}

impl Cipher {
    /// The name the API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Chacha20IetfPoly1305 => "chacha20-ietf-poly1305",
            Self::Aes256Gcm => "aes-256-gcm",
            Self::Aes192Gcm => "aes-192-gcm",
            Self::Aes128Gcm => "aes-128-gcm",
        }
    }
}

impl fmt::Display for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Cipher {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "chacha20-ietf-poly1305" => Ok(Self::Chacha20IetfPoly1305),
            "aes-256-gcm" => Ok(Self::Aes256Gcm),
            "aes-192-gcm" => Ok(Self::Aes192Gcm),
            "aes-128-gcm" => Ok(Self::Aes128Gcm),
            other => Err(Error::invalid_input(
                BACKEND,
                format!(
                    "cipher `{other}` is not one the server accepts (chacha20-ietf-poly1305, aes-256-gcm, aes-192-gcm, aes-128-gcm)"
                ),
            )),
        }
    }
}

impl Serialize for Cipher {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The optional settings of a new access key. Everything left unset gets the server's
/// default: an empty name, `chacha20-ietf-poly1305`, a random password, the port for new
/// keys, no own data limit.
///
/// ```
/// use outline_client::{Cipher, NewAccessKey};
///
/// let key = NewAccessKey::new()
///     .with_name("Alice")
///     .with_method(Cipher::Aes192Gcm)
///     .with_data_limit(10_000);
/// assert_eq!(
///     serde_json::to_string(&key).unwrap(),
///     r#"{"name":"Alice","method":"aes-192-gcm","limit":{"bytes":10000}}"#
/// );
/// ```
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
#[must_use]
pub struct NewAccessKey {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<Cipher>,
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<DataLimit>,
}

impl fmt::Debug for NewAccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewAccessKey")
            .field("name", &self.name)
            .field("method", &self.method)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("port", &self.port)
            .field("limit", &self.limit)
            .finish()
    }
}

impl NewAccessKey {
    /// A key with every setting left to the server.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the display name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the cipher.
    pub fn with_method(mut self, method: Cipher) -> Self {
        self.method = Some(method);
        self
    }

    /// Sets the password; it must differ from every other key's.
    pub fn with_password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Sets the port (1–65535).
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Gives the key its own data limit in bytes (0 cuts it off).
    pub fn with_data_limit(mut self, bytes: u64) -> Self {
        self.limit = Some(DataLimit { bytes });
        self
    }

    /// Checks what the server would reject, before sending.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.port == Some(0) {
            return Err(Error::invalid_input(
                BACKEND,
                "port 0 is invalid: use 1 to 65535",
            ));
        }
        if self.password.as_deref() == Some("") {
            return Err(Error::invalid_input(
                BACKEND,
                "the password must not be empty (leave it unset for a random one)",
            ));
        }
        Ok(())
    }
}

/// `GET /metrics/transfer`: bytes each access key transferred **from the server** over the
/// last 30 days (a fixed, rolling window; no parameters).
///
/// Keys with no traffic are absent (read them as 0); keys that were deleted but still have
/// traffic in the window are present. Ids are strings, including non-numeric ones and `""`
/// for unlabelled traffic.
///
/// Decoded into one string buffer for all ids plus twelve bytes per key (where its id ends,
/// its count), in the server's order: a 100 000-key response needs two allocations that
/// grow, not one per key, and takes less memory than its body.
/// An id that appears twice keeps its first position and its last value, as serde_json's
/// maps and JavaScript's `JSON.parse` read it; every accessor sees it once.
///
/// ```
/// use outline_client::TransferMetrics;
///
/// let body = r#"{"0":76609,"alpha-key":365474,"10":5958113497}"#;
/// let transfer: TransferMetrics = serde_json::from_str(body).unwrap();
/// assert_eq!(transfer.len(), 3);
/// assert_eq!(transfer.get("alpha-key"), Some(365_474));
/// assert_eq!(transfer.bytes("never-used"), 0);
/// assert_eq!(transfer.total(), 76_609 + 365_474 + 5_958_113_497);
/// assert_eq!(transfer.iter().next(), Some(("0", 76_609)));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TransferMetrics {
    ids: String,
    /// Per key: where its id ends in `ids`, and its byte count.
    entries: Vec<Entry>,
}

/// One key of a [`TransferMetrics`]: where its id ends in the id buffer and its byte count,
/// in twelve bytes where `(usize, u64)` takes sixteen.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Entry {
    end: u32,
    /// The count's low and high halves: two `u32`s keep the entry aligned to four bytes.
    bytes: [u32; 2],
}

impl Entry {
    /// `None` past 4 GiB of ids.
    fn new(end: usize, bytes: u64) -> Option<Self> {
        let mut entry = Self {
            end: u32::try_from(end).ok()?,
            bytes: [0; 2],
        };
        entry.set_bytes(bytes);
        Some(entry)
    }

    fn end(self) -> usize {
        self.end as usize
    }

    fn bytes(self) -> u64 {
        u64::from(self.bytes[0]) | (u64::from(self.bytes[1]) << 32)
    }

    fn set_bytes(&mut self, bytes: u64) {
        #[allow(clippy::cast_possible_truncation, reason = "split into halves")]
        let halves = [bytes as u32, (bytes >> 32) as u32];
        self.bytes = halves;
    }
}

impl TransferMetrics {
    /// Decodes a whole `GET /metrics/transfer` response body,
    /// `{"bytesTransferredByUserId":{…}}` — what [`Metrics::transfer`](crate::Metrics::transfer)
    /// does with the bytes it receives.
    ///
    /// ```
    /// let body = br#"{"bytesTransferredByUserId":{"0":76609,"alpha-key":365474}}"#;
    /// let transfer = outline_client::TransferMetrics::from_json(body)?;
    /// assert_eq!(transfer.get("alpha-key"), Some(365_474));
    /// # Ok::<_, metrics_core::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] naming the failing field when the body is not that shape, or when
    /// a count is not an integer literal in `0..=u64::MAX`: `1.0`, `1e3` and `-0` are
    /// refused as `u64` refuses them (the server writes plain integers).
    pub fn from_json(body: &[u8]) -> Result<Self> {
        match scan_transfer(body) {
            Some(metrics) => Ok(metrics),
            None => transfer_decoders::serde(body),
        }
    }

    /// How many keys had traffic.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key had traffic.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `(key id, bytes)` in the order the server sent them.
    pub fn iter(&self) -> TransferIter<'_> {
        TransferIter {
            metrics: self,
            index: 0,
            start: 0,
        }
    }

    /// The bytes of key `id`, or `None` when it had no traffic. A linear scan: for many
    /// lookups, build a map once with [`TransferMetrics::to_map`].
    pub fn get(&self, id: &str) -> Option<u64> {
        self.iter()
            .find(|(key, _)| *key == id)
            .map(|(_, bytes)| bytes)
    }

    /// The bytes of key `id`, 0 when it had no traffic.
    pub fn bytes(&self, id: &str) -> u64 {
        self.get(id).unwrap_or(0)
    }

    /// The sum over all keys.
    pub fn total(&self) -> u64 {
        self.entries
            .iter()
            .fold(0u64, |sum, entry| sum.saturating_add(entry.bytes()))
    }

    /// The same data as a sorted map.
    pub fn to_map(&self) -> BTreeMap<String, u64> {
        self.iter()
            .map(|(id, bytes)| (id.to_owned(), bytes))
            .collect()
    }
}

impl fmt::Debug for TransferMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// A repeated id keeps its first position and its last value, as in a decoded body.
///
/// ```
/// use outline_client::TransferMetrics;
///
/// let transfer: TransferMetrics = [("1", 3), ("2", 5), ("1", 4)].into_iter().collect();
/// assert_eq!(transfer.iter().collect::<Vec<_>>(), [("1", 4), ("2", 5)]);
/// ```
///
/// # Panics
///
/// With more than 4 294 967 294 distinct ids, or more than 4 GiB of them.
impl<S: AsRef<str>> FromIterator<(S, u64)> for TransferMetrics {
    fn from_iter<I: IntoIterator<Item = (S, u64)>>(iter: I) -> Self {
        let mut builder = TransferBuilder::default();
        for (id, bytes) in iter {
            if let Err(too_many) = builder.insert(id.as_ref(), bytes) {
                panic!("{too_many}");
            }
        }
        builder.finish()
    }
}

impl<'a> IntoIterator for &'a TransferMetrics {
    type Item = (&'a str, u64);
    type IntoIter = TransferIter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The iterator of [`TransferMetrics::iter`].
#[derive(Clone, Debug)]
pub struct TransferIter<'a> {
    metrics: &'a TransferMetrics,
    index: usize,
    start: usize,
}

impl<'a> Iterator for TransferIter<'a> {
    type Item = (&'a str, u64);

    fn next(&mut self) -> Option<Self::Item> {
        let entry = *self.metrics.entries.get(self.index)?;
        let (end, bytes) = (entry.end(), entry.bytes());
        let id = self.metrics.ids.get(self.start..end).unwrap_or_default();
        self.index += 1;
        self.start = end;
        Some((id, bytes))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.metrics.entries.len() - self.index;
        (left, Some(left))
    }
}

impl ExactSizeIterator for TransferIter<'_> {}

impl Serialize for TransferMetrics {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (id, bytes) in self {
            map.serialize_entry(id, &bytes)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for TransferMetrics {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_map(TransferVisitor)
    }
}

struct TransferVisitor;

impl<'de> Visitor<'de> for TransferVisitor {
    type Value = TransferMetrics;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of access key ids to byte counts")
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        // Nothing is reserved from the map's size hint: memory follows what was decoded.
        let mut builder = TransferBuilder::default();
        let mut unescaped = String::new();
        while let Some(borrowed) = map.next_key_seed(ReadId(&mut unescaped))? {
            let bytes = map.next_value_seed(ByteCount)?;
            let id = borrowed.unwrap_or(&unescaped);
            builder.insert(id, bytes).map_err(de::Error::custom)?;
        }
        Ok(builder.finish())
    }
}

/// Reads a map key without a `String` per key: borrowed from the input where the
/// deserializer can lend it (`Some`), otherwise copied into one reused buffer (`None`).
struct ReadId<'a>(&'a mut String);

impl<'de> DeserializeSeed<'de> for ReadId<'_> {
    type Value = Option<&'de str>;

    fn deserialize<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> std::result::Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for ReadId<'_> {
    type Value = Option<&'de str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an access key id")
    }

    fn visit_borrowed_str<E: de::Error>(self, id: &'de str) -> std::result::Result<Self::Value, E> {
        Ok(Some(id))
    }

    fn visit_str<E: de::Error>(self, id: &str) -> std::result::Result<Self::Value, E> {
        self.0.clear();
        self.0.push_str(id);
        Ok(None)
    }
}

/// Builds a [`TransferMetrics`] one decoded pair at a time — for the scanner, the serde
/// visitor and `FromIterator` alike, so that a repeated id means the same on every path: its
/// last value, at its first position.
#[derive(Default)]
struct TransferBuilder {
    /// Every id back to back, each valid UTF-8 (the callers see to it): the scanner hands
    /// over bytes it has checked, so that an ASCII id needs no `str` conversion of its own.
    ids: Vec<u8>,
    /// Per id: where it ends in `ids`, and its byte count.
    entries: Vec<Entry>,
    /// How the ids read so far are known not to repeat.
    order: IdOrder,
    /// `(length, value)` of the last [`short_number`] id, in [`IdOrder::NumbersFirst`].
    last_number: Option<(usize, u64)>,
    /// [`ShortId::order`] of the last id, in [`IdOrder::Sorted`], when it was short.
    last_short: Option<u64>,
    table: IdTable,
}

/// How a [`TransferBuilder`] knows that an id is new, from the cheapest check to the
/// dearest; it only ever moves down this list, and at most once rebuilds what it knows
/// from the ids read so far.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum IdOrder {
    /// Every id sorts after the one before, byte by byte, as a sorted map is serialized
    /// (`serde_json` over a `BTreeMap`, Go's `encoding/json`): a repeat would be out of
    /// order, so one comparison with the last id is the whole check, and no table is kept.
    #[default]
    Sorted,
    /// The [`short_number`] ids strictly ascending by `(length, value)`, which is the
    /// server's order (JavaScript enumerates integer keys first, ascending): they cannot
    /// repeat each other, so only the other ids go into the table, and a body from the
    /// server costs one comparison per key.
    NumbersFirst,
    /// Every id is in the table.
    Table,
}

impl TransferBuilder {
    fn insert(&mut self, id: &str, bytes: u64) -> std::result::Result<(), TooManyIds> {
        self.insert_checked(id.as_bytes(), short_number(id.as_bytes()), bytes)
    }

    /// [`TransferBuilder::insert_checked`] for an id read in one word: in
    /// [`IdOrder::Sorted`], compared with the last id and appended a word at a time.
    #[inline]
    fn insert_short(
        &mut self,
        id: &[u8],
        short: ShortId,
        number: Option<u64>,
        bytes: u64,
    ) -> std::result::Result<(), TooManyIds> {
        if self.order == IdOrder::Sorted
            && (self.entries.is_empty() || self.last_short.is_some_and(|last| last < short.order))
        {
            // The whole word, then the bytes after the id cut off again: a copy of fixed
            // size instead of one the length of the id.
            let end = self.ids.len() + short.length;
            self.ids.extend_from_slice(&short.word.to_le_bytes());
            self.ids.truncate(end);
            self.entries.push(Entry::new(end, bytes).ok_or(TooManyIds)?);
            self.last_short = Some(short.order);
            return Ok(());
        }
        self.insert_checked(id, number, bytes)?;
        if self.order == IdOrder::Sorted {
            self.last_short = Some(short.order);
        }
        Ok(())
    }

    /// `id` must be valid UTF-8 and `number` its [`short_number`].
    fn insert_checked(
        &mut self,
        id: &[u8],
        number: Option<u64>,
        bytes: u64,
    ) -> std::result::Result<(), TooManyIds> {
        if self.order == IdOrder::Sorted {
            let listing = Listing {
                ids: &self.ids,
                entries: &self.entries,
            };
            if self
                .entries
                .len()
                .checked_sub(1)
                .is_none_or(|last| listing.id(last) < id)
            {
                self.push(id, bytes)?;
                self.last_short = None;
                return Ok(());
            }
            self.leave_sorted()?;
        }
        if self.order == IdOrder::NumbersFirst
            && let Some(value) = number
        {
            let key = (id.len(), value);
            if self.last_number.is_none_or(|last| last < key) {
                self.last_number = Some(key);
                self.push(id, bytes)?;
                return Ok(());
            }
            self.order = IdOrder::Table;
            let listing = Listing {
                ids: &self.ids,
                entries: &self.entries,
            };
            for index in 0..self.entries.len() {
                let earlier = listing.id(index);
                if short_number(earlier).is_some() {
                    let hash = self.table.hash(earlier);
                    self.table.insert(listing, hash, index)?;
                }
            }
        }
        let hash = self.table.hash(id);
        let listing = Listing {
            ids: &self.ids,
            entries: &self.entries,
        };
        if let Some(index) = self.table.find(listing, hash, id) {
            self.entries[index].set_bytes(bytes);
            return Ok(());
        }
        let index = self.entries.len();
        IdTable::slot_value(index)?;
        self.push(id, bytes)?;
        let listing = Listing {
            ids: &self.ids,
            entries: &self.entries,
        };
        self.table.insert(listing, hash, index)
    }

    /// The first id out of byte order: one pass over the ids read so far finds the next
    /// check that holds for them, and puts in the table the ids that check does not cover.
    fn leave_sorted(&mut self) -> std::result::Result<(), TooManyIds> {
        let listing = Listing {
            ids: &self.ids,
            entries: &self.entries,
        };
        let mut last_number = None;
        let mut numbers_first = true;
        for index in 0..self.entries.len() {
            if let Some(value) = short_number(listing.id(index)) {
                let key = (listing.id(index).len(), value);
                if last_number.is_some_and(|last| last >= key) {
                    numbers_first = false;
                    break;
                }
                last_number = Some(key);
            }
        }
        for index in 0..self.entries.len() {
            let earlier = listing.id(index);
            if !numbers_first || short_number(earlier).is_none() {
                let hash = self.table.hash(earlier);
                self.table.insert(listing, hash, index)?;
            }
        }
        self.last_number = last_number;
        self.order = if numbers_first {
            IdOrder::NumbersFirst
        } else {
            IdOrder::Table
        };
        Ok(())
    }

    fn push(&mut self, id: &[u8], bytes: u64) -> std::result::Result<(), TooManyIds> {
        self.ids.extend_from_slice(id);
        self.entries
            .push(Entry::new(self.ids.len(), bytes).ok_or(TooManyIds)?);
        Ok(())
    }

    fn finish(self) -> TransferMetrics {
        // One pass over the ids alone, never over the body; it cannot fail, every id having
        // been checked on its way in.
        let ids = String::from_utf8(self.ids)
            .unwrap_or_else(|invalid| String::from_utf8_lossy(invalid.as_bytes()).into_owned());
        TransferMetrics {
            ids,
            entries: self.entries,
        }
    }
}

/// The value of an id of 1 to 19 ASCII digits — what the server writes for ids it
/// numbered — or `None`. By `(length, value)` such ids are ordered as their bytes are, so
/// a strictly ascending run of them has no repeat.
fn short_number(id: &[u8]) -> Option<u64> {
    if id.is_empty() || id.len() > 19 {
        return None;
    }
    id.iter().try_fold(0u64, |value, &byte| {
        let digit = byte.wrapping_sub(b'0');
        (digit < 10).then(|| value * 10 + u64::from(digit))
    })
}

/// The ids of a [`TransferMetrics`] being built.
#[derive(Clone, Copy)]
struct Listing<'a> {
    ids: &'a [u8],
    entries: &'a [Entry],
}

impl<'a> Listing<'a> {
    fn id(self, index: usize) -> &'a [u8] {
        let start = index
            .checked_sub(1)
            .map_or(0, |previous| self.entries[previous].end());
        &self.ids[start..self.entries[index].end()]
    }
}

/// The entries of a [`TransferMetrics`] being built, by id: open addressing with linear
/// probing over entry indices, the ids themselves staying in the one buffer.
#[derive(Default)]
struct IdTable {
    /// 0 for an empty slot, otherwise an entry index + 1.
    slots: Vec<u32>,
    filled: usize,
    /// Keyed afresh for every decode, so that ids chosen to collide cannot make it
    /// quadratic.
    hasher: RandomState,
}

impl IdTable {
    fn hash(&self, id: &[u8]) -> u64 {
        self.hasher.hash_one(id)
    }

    fn find(&self, listing: Listing<'_>, hash: u64, id: &[u8]) -> Option<usize> {
        let mask = self.slots.len().checked_sub(1)?;
        let mut slot = Self::home(hash, mask);
        loop {
            let index = self.slots[slot].checked_sub(1)? as usize;
            if listing.id(index) == id {
                return Some(index);
            }
            slot = (slot + 1) & mask;
        }
    }

    fn slot_value(index: usize) -> std::result::Result<u32, TooManyIds> {
        index
            .checked_add(1)
            .and_then(|slot| u32::try_from(slot).ok())
            .ok_or(TooManyIds)
    }

    /// Records entry `index`, whose id is not in the table yet.
    fn insert(
        &mut self,
        listing: Listing<'_>,
        hash: u64,
        index: usize,
    ) -> std::result::Result<(), TooManyIds> {
        let value = Self::slot_value(index)?;
        // At most three quarters full, so that probe runs stay short.
        if (self.filled + 1) * 4 > self.slots.len() * 3 {
            let grown = vec![0; (self.slots.len() * 2).max(16)];
            let old = std::mem::replace(&mut self.slots, grown);
            for value in old.into_iter().filter(|&value| value != 0) {
                let hash = self.hash(listing.id(value as usize - 1));
                self.place(hash, value);
            }
        }
        self.place(hash, value);
        self.filled += 1;
        Ok(())
    }

    fn place(&mut self, hash: u64, value: u32) {
        let mask = self.slots.len() - 1;
        let mut slot = Self::home(hash, mask);
        while self.slots[slot] != 0 {
            slot = (slot + 1) & mask;
        }
        self.slots[slot] = value;
    }

    fn home(hash: u64, mask: usize) -> usize {
        #[allow(
            clippy::cast_possible_truncation,
            reason = "only the bits under the mask are used"
        )]
        let low = hash as usize;
        low & mask
    }
}

/// More distinct ids than an entry index in the table can count.
#[derive(Debug)]
struct TooManyIds;

impl fmt::Display for TooManyIds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("more than 4 294 967 294 distinct access key ids, or more than 4 GiB of them")
    }
}

/// A byte count, read as `u64` reads it: an integer literal in `0..=u64::MAX`. The server
/// writes `Math.round`ed integers, which JavaScript spells without a fraction or exponent
/// below 10²¹; any literal with one (`1.0`, `1e3`) is refused, because its float value
/// cannot tell `1.0000000000000001` or `1e-400` from a whole number.
struct ByteCount;

impl<'de> DeserializeSeed<'de> for ByteCount {
    type Value = u64;

    fn deserialize<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> std::result::Result<u64, D::Error> {
        deserializer.deserialize_u64(self)
    }
}

impl Visitor<'_> for ByteCount {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a non-negative integer byte count")
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> std::result::Result<u64, E> {
        Ok(value)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> std::result::Result<u64, E> {
        u64::try_from(value).map_err(|_| E::invalid_value(de::Unexpected::Signed(value), &self))
    }
}

/// The fast path of [`TransferMetrics::from_json`]: the shape every Outline server sends,
/// `{"bytesTransferredByUserId":{"<id>":<integer>,…}}` with any JSON whitespace, read in one
/// pass that keeps only what it has checked — each id as UTF-8 the way serde_json checks it,
/// each count as `u64` reads it. `None` for anything else — another field, a float or
/// negative count, a syntax error — and serde decides, with its error messages; so this
/// accepts nothing the serde path would not, with the same result.
fn scan_transfer(body: &[u8]) -> Option<TransferMetrics> {
    const FIELD: &[u8] = b"\"bytesTransferredByUserId\"";
    let mut at = step_over(body, 0, b'{')?;
    at = skip_whitespace(body, at);
    body.get(at..)?.starts_with(FIELD).then_some(())?;
    at = step_over(body, at + FIELD.len(), b':')?;
    at = step_over(body, at, b'{')?;
    at = skip_whitespace(body, at);

    // Nothing is reserved ahead: both buffers grow with what has been read.
    let mut builder = TransferBuilder::default();
    if body.get(at) == Some(&b'}') {
        at += 1;
    } else {
        loop {
            at = step_over(body, at, b'"')?;
            let id = scan_id(body, at)?;
            at = step_over(body, id.end, b':')?;
            let (bytes, after_count) = scan_count(body, skip_whitespace(body, at))?;
            match id.short {
                Some(short) => builder.insert_short(&id.bytes, short, id.number, bytes),
                None => builder.insert_checked(&id.bytes, id.number, bytes),
            }
            .ok()?;
            at = match body.get(after_count) {
                Some(b',') => after_count + 1,
                Some(b'}') => {
                    at = after_count + 1;
                    break;
                }
                _ => {
                    let next = skip_whitespace(body, after_count);
                    match body.get(next) {
                        Some(b',') => next + 1,
                        Some(b'}') => {
                            at = next + 1;
                            break;
                        }
                        _ => return None,
                    }
                }
            };
        }
    }
    at = step_over(body, at, b'}')?;
    (skip_whitespace(body, at) == body.len()).then(|| builder.finish())
}

/// The first position from `at` that is not JSON whitespace.
fn skip_whitespace(body: &[u8], mut at: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = body.get(at) {
        at += 1;
    }
    at
}

/// The position after `byte`, which comes at `at` after any whitespace; `None` if another
/// byte does.
fn step_over(body: &[u8], at: usize, byte: u8) -> Option<usize> {
    if body.get(at) == Some(&byte) {
        return Some(at + 1);
    }
    let at = skip_whitespace(body, at);
    (body.get(at) == Some(&byte)).then_some(at + 1)
}

/// An id as [`scan_id`] read it.
struct ScannedId<'a> {
    /// Its bytes, unescaped.
    bytes: Cow<'a, [u8]>,
    /// Its [`short_number`].
    number: Option<u64>,
    /// For an id of fewer than eight bytes read in one word, that word.
    short: Option<ShortId>,
    /// The position after its closing quote.
    end: usize,
}

/// An id of fewer than eight bytes, none of them zero (a control byte ends the word
/// reading), held in one word.
#[derive(Clone, Copy)]
struct ShortId {
    /// The eight bytes from the id's start, first byte lowest: the id and what follows it.
    word: u64,
    /// The id's length, below 8.
    length: usize,
    /// The id's bytes, first byte highest, zeros after them: as no byte of the id is zero,
    /// these numbers are ordered as the ids are, byte by byte.
    order: u64,
}

/// Ids longer than this are searched for their end with `memchr` rather than byte by byte,
/// which is quicker for the short ids servers send.
const LONG_ID: usize = 32;

/// The id whose opening quote is just before `start`: its bytes, checked as serde_json
/// checks a string, its [`short_number`], and the position after its closing quote; `None`
/// where serde_json would refuse it.
fn scan_id(body: &[u8], start: usize) -> Option<ScannedId<'_>> {
    // An id shorter than eight bytes, as servers write them, is read in one word: its end
    // is the first quote, backslash or control byte, and only a quote ends it here.
    if let Some(chunk) = body.get(start..start + 8) {
        let word = u64::from_le_bytes(chunk.try_into().ok()?);
        let stops = zero_bytes(word ^ 0x2222_2222_2222_2222)
            | zero_bytes(word ^ 0x5c5c_5c5c_5c5c_5c5c)
            | (word.wrapping_sub(0x2020_2020_2020_2020) & !word & 0x8080_8080_8080_8080);
        let length = (stops.trailing_zeros() / 8) as usize;
        if length < 8 && body[start + length] == b'"' {
            let id = &body[start..start + length];
            let before_quote = (1u64 << (8 * length)) - 1;
            if word & before_quote & 0x8080_8080_8080_8080 != 0 {
                std::str::from_utf8(id).ok()?;
            }
            let number = (length > 0 && digit_run(word) >= length).then(|| run_value(word, length));
            return Some(ScannedId {
                bytes: Cow::Borrowed(id),
                number,
                short: Some(ShortId {
                    word,
                    length,
                    order: (word & before_quote).swap_bytes(),
                }),
                end: start + length + 1,
            });
        }
    }
    let mut at = start;
    let mut value: u64 = 0;
    let mut digits_only = true;
    let mut seen: u8 = 0;
    loop {
        let byte = *body.get(at)?;
        match byte {
            b'"' => break,
            b'\\' => return scan_escaped_id(body, start),
            0..=0x1f => return None,
            _ => {}
        }
        seen |= byte;
        let digit = byte.wrapping_sub(b'0');
        if digit < 10 {
            value = value.wrapping_mul(10).wrapping_add(u64::from(digit));
        } else {
            digits_only = false;
        }
        at += 1;
        if at - start == LONG_ID {
            return scan_long_id(body, start);
        }
    }
    let id = &body[start..at];
    if seen >= 0x80 {
        std::str::from_utf8(id).ok()?;
    }
    // Exactly [`short_number`]: an id must fall on the same side however it is spelled.
    let number = (digits_only && (1..=19).contains(&id.len())).then_some(value);
    Some(ScannedId {
        bytes: Cow::Borrowed(id),
        number,
        short: None,
        end: at + 1,
    })
}

/// [`scan_id`] for an id of [`LONG_ID`] bytes or more.
fn scan_long_id(body: &[u8], start: usize) -> Option<ScannedId<'_>> {
    let end = start + memchr::memchr2(b'"', b'\\', body.get(start..)?)?;
    if body[end] == b'\\' {
        return scan_escaped_id(body, start);
    }
    let id = &body[start..end];
    if id.iter().any(|&b| b < 0x20) {
        return None;
    }
    std::str::from_utf8(id).ok()?;
    Some(ScannedId {
        bytes: Cow::Borrowed(id),
        number: None,
        short: None,
        end: end + 1,
    })
}

/// [`scan_id`] for an id with an escape: finds the closing quote, skipping every escaped
/// byte, and lets serde_json read that one literal, with its own rules for `\u` escapes
/// and surrogate pairs.
fn scan_escaped_id(body: &[u8], start: usize) -> Option<ScannedId<'_>> {
    let rest = body.get(start..)?;
    let mut end = memchr::memchr2(b'"', b'\\', rest)?;
    while rest[end] == b'\\' {
        let after_escape = end + 2;
        end = after_escape + memchr::memchr2(b'"', b'\\', rest.get(after_escape..)?)?;
    }
    let literal = body.get(start - 1..start + end + 1)?;
    let id: String = serde_json::from_slice(literal).ok()?;
    let number = short_number(id.as_bytes());
    Some(ScannedId {
        bytes: Cow::Owned(id.into_bytes()),
        number,
        short: None,
        end: start + end + 1,
    })
}

/// A byte count at `start` as `u64` reads it — digits without a leading zero, no sign, no
/// fraction, no exponent, at most `u64::MAX` — and the position after it. Eight digits at a
/// time while eight bytes remain.
fn scan_count(body: &[u8], start: usize) -> Option<(u64, usize)> {
    // Up to 15 digits, with the sixteen bytes there to read them in two words: no overflow
    // is possible, so none is checked. Longer counts, and the end of the body, go to
    // [`scan_long_count`].
    let word = |at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(body.get(at..at + 8)?.try_into().ok()?))
    };
    let (Some(first), Some(second)) = (word(start), word(start + 8)) else {
        return scan_long_count(body, start);
    };
    let run = digit_run(first);
    let (value, digits) = match run {
        0 => return None,
        8 => {
            let more = digit_run(second);
            if more == 8 {
                return scan_long_count(body, start);
            }
            let high = run_value(first, 8);
            let low = match more {
                0 => return plain_count(body, start, high, 8),
                _ => run_value(second, more),
            };
            (high * POWERS_OF_TEN[more] + low, 8 + more)
        }
        _ => (run_value(first, run), run),
    };
    plain_count(body, start, value, digits)
}

/// The checks of a count of `digits` digits at `start` whose value is `value`: no leading
/// zero, no fraction, no exponent.
#[inline]
fn plain_count(body: &[u8], start: usize, value: u64, digits: usize) -> Option<(u64, usize)> {
    let at = start + digits;
    if digits == 0 || (digits > 1 && body[start] == b'0') {
        return None;
    }
    if let Some(b'.' | b'e' | b'E') = body.get(at) {
        return None;
    }
    Some((value, at))
}

/// [`scan_count`] for a count of 16 digits or more, or near the end of the body: eight
/// digits at a time while eight bytes remain, each step checked for overflow.
fn scan_long_count(body: &[u8], start: usize) -> Option<(u64, usize)> {
    let mut at = start;
    let mut value: u64 = 0;
    while let Some(chunk) = body.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().ok()?);
        let run = digit_run(word);
        if run == 0 {
            break;
        }
        value = value
            .checked_mul(POWERS_OF_TEN[run])?
            .checked_add(run_value(word, run))?;
        at += run;
        if run < 8 {
            break;
        }
    }
    while let Some(&byte) = body.get(at) {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            break;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(digit))?;
        at += 1;
    }
    let digits = at - start;
    if digits == 0 || (digits > 1 && body[start] == b'0') {
        return None;
    }
    if let Some(b'.' | b'e' | b'E') = body.get(at) {
        return None;
    }
    Some((value, at))
}

/// The high bit of the first zero byte of `word` (first byte lowest), and perhaps of later
/// bytes, which are never read: a borrow runs upward only from a zero byte.
fn zero_bytes(word: u64) -> u64 {
    word.wrapping_sub(0x0101_0101_0101_0101) & !word & 0x8080_8080_8080_8080
}

/// The two decoders behind [`TransferMetrics::from_json`], one at a time, for the
/// differential tests and the measurement in `tests/`. Not part of the API.
#[doc(hidden)]
pub mod transfer_decoders {
    use super::{BACKEND, Result, TransferMetrics, TransferResponse};

    /// The hand-written scanner: `None` where it leaves the body to [`serde`].
    pub fn scan(body: &[u8]) -> Option<TransferMetrics> {
        super::scan_transfer(body)
    }

    /// serde_json through the same visitor, with the pipeline's decode errors.
    ///
    /// # Errors
    ///
    /// As [`TransferMetrics::from_json`].
    pub fn serde(body: &[u8]) -> Result<TransferMetrics> {
        let response: TransferResponse = metrics_core::http::decode_json(BACKEND, body)?;
        Ok(response.bytes_transferred_by_user_id)
    }
}

#[derive(Deserialize)]
pub(crate) struct TransferResponse {
    #[serde(rename = "bytesTransferredByUserId")]
    pub(crate) bytes_transferred_by_user_id: TransferMetrics,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MetricsEnabled {
    pub(crate) metrics_enabled: bool,
}

#[derive(Serialize)]
pub(crate) struct NameBody<'a> {
    pub(crate) name: &'a str,
}

#[derive(Serialize)]
pub(crate) struct HostnameBody<'a> {
    pub(crate) hostname: &'a str,
}

#[derive(Serialize)]
pub(crate) struct PortBody {
    pub(crate) port: u16,
}

/// The only data-limit body the server reads; see [`DataLimit`].
#[derive(Serialize)]
pub(crate) struct LimitBody {
    pub(crate) limit: DataLimit,
}

/// How far back `GET /experimental/server/metrics` looks: its `since` parameter.
///
/// The server reads `since` as a number and a unit — `s`, `h`, `d` or `w`; **no minutes and
/// no timestamps** (`1m` and ISO dates are a 400) — and fails with a bare 500 for ranges of
/// zero or longer than 3 299 700 s (≈ 38.2 days, Prometheus' 11 000-point limit at its
/// 300 s step). `Since` holds whole seconds in `1..=3_299_700`, checked when it is made, and
/// is sent in the largest unit that divides it exactly (`30d`, `1w`, `2h`, `90s`), so that
/// the common `30d` shares the server's 5-minute query cache with Outline Manager.
///
/// ```
/// use std::time::Duration;
/// use outline_client::Since;
///
/// assert_eq!(Since::days(30)?.to_string(), "30d");
/// assert_eq!(Since::hours(168)?.to_string(), "1w");
/// assert_eq!(Since::from_duration(Duration::from_secs(90))?.to_string(), "90s");
/// assert_eq!("1.5h".parse::<Since>()?.as_secs(), 5400);
/// assert!(Since::days(39).is_err());
/// assert!("1m".parse::<Since>().is_err());
/// assert_eq!(Since::default(), Since::days(30)?);
/// # Ok::<_, metrics_core::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Since {
    seconds: u32,
}

impl Since {
    /// The longest range the server answers: 300 s × 10 999 points = 3 299 700 s.
    pub const MAX_SECONDS: u64 = 3_299_700;

    /// The longest range the server answers.
    pub const MAX: Self = Self { seconds: 3_299_700 };

    /// `seconds` back from now.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] unless `1 <= seconds <= 3_299_700`.
    pub fn from_secs(seconds: u64) -> Result<Self> {
        if seconds == 0 || seconds > Self::MAX_SECONDS {
            return Err(Error::invalid_input(
                BACKEND,
                format!(
                    "the server metrics range must be between 1 s and {} s (about 38.2 days); got {seconds} s",
                    Self::MAX_SECONDS
                ),
            ));
        }
        let seconds = u32::try_from(seconds)
            .map_err(|_| Error::invalid_input(BACKEND, "the server metrics range is too long"))?;
        Ok(Self { seconds })
    }

    /// A whole-second duration back from now.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for fractions of a second or a range out of bounds.
    pub fn from_duration(duration: Duration) -> Result<Self> {
        if duration.subsec_nanos() != 0 {
            return Err(Error::invalid_input(
                BACKEND,
                "the server metrics range must be a whole number of seconds",
            ));
        }
        Self::from_secs(duration.as_secs())
    }

    /// `hours` hours back.
    ///
    /// # Errors
    ///
    /// As [`Since::from_secs`].
    pub fn hours(hours: u64) -> Result<Self> {
        Self::from_secs(hours.saturating_mul(3600))
    }

    /// `days` days back (at most 38).
    ///
    /// # Errors
    ///
    /// As [`Since::from_secs`].
    pub fn days(days: u64) -> Result<Self> {
        Self::from_secs(days.saturating_mul(86_400))
    }

    /// `weeks` weeks back (at most 5).
    ///
    /// # Errors
    ///
    /// As [`Since::from_secs`].
    pub fn weeks(weeks: u64) -> Result<Self> {
        Self::from_secs(weeks.saturating_mul(604_800))
    }

    /// The range in seconds.
    pub fn as_secs(self) -> u64 {
        u64::from(self.seconds)
    }

    /// The range as a duration.
    pub fn as_duration(self) -> Duration {
        Duration::from_secs(self.as_secs())
    }
}

impl Default for Since {
    /// 30 days, what Outline Manager asks for.
    fn default() -> Self {
        Self {
            seconds: 30 * 86_400,
        }
    }
}

impl fmt::Display for Since {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.seconds;
        for (unit, size) in [('w', 604_800), ('d', 86_400), ('h', 3600)] {
            if seconds.is_multiple_of(size) {
                return write!(f, "{}{unit}", seconds / size);
            }
        }
        write!(f, "{seconds}s")
    }
}

impl FromStr for Since {
    type Err = Error;

    /// Parses the server's own grammar, `^[0-9]+(\.[0-9]+)?[shdw]$`, to a whole number of
    /// seconds within bounds.
    fn from_str(text: &str) -> Result<Self> {
        let invalid = || {
            Error::invalid_input(
                BACKEND,
                format!(
                    "`{text}` is not a server metrics range: use a number and s, h, d or w (`3600s`, `1.5h`, `30d`, `2w`); minutes and dates are not accepted"
                ),
            )
        };
        let Some(unit) = text.chars().last() else {
            return Err(invalid());
        };
        let unit_seconds: u64 = match unit {
            's' => 1,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(invalid()),
        };
        let number = &text[..text.len() - 1];
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || (number.contains('.') && !digits(fraction)) {
            return Err(invalid());
        }
        // Exact arithmetic in parts per 10^9. Trailing zeros change nothing; past them, a
        // fraction finer than 10^-7 cannot give a whole number of seconds with these units
        // (604 800 = 2^7 · 3^3 · 5^2 · 7), so one finer than 10^-9 is refused unread.
        let fraction = fraction.trim_end_matches('0');
        if fraction.len() > 9 {
            return Err(invalid());
        }
        let whole: u64 = whole.parse().map_err(|_| invalid())?;
        let scale = 10u64.pow(u32::try_from(fraction.len()).unwrap_or(0));
        let fraction: u64 = if fraction.is_empty() {
            0
        } else {
            fraction.parse().map_err(|_| invalid())?
        };
        let nanos_per_unit = u128::from(unit_seconds) * 1_000_000_000;
        let total_nanos = u128::from(whole) * nanos_per_unit
            + u128::from(fraction) * nanos_per_unit / u128::from(scale);
        if total_nanos % 1_000_000_000 != 0 {
            return Err(Error::invalid_input(
                BACKEND,
                format!("`{text}` is not a whole number of seconds"),
            ));
        }
        let seconds = u64::try_from(total_nanos / 1_000_000_000).unwrap_or(u64::MAX);
        Self::from_secs(seconds)
    }
}

/// `GET /experimental/server/metrics`: aggregates over the `since` window (not time series).
///
/// Every quantity is a float (Prometheus `increase()` extrapolates), timestamps are
/// fractional Unix seconds or `null`, and `accessKeys` lists only keys with traffic in the
/// window — see the field docs. Data can be up to 5 minutes old (the server caches each
/// query for 300 s).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ServerMetrics {
    /// Server-wide totals.
    pub server: ServerTotals,
    /// Per access key, only keys with data in the window; order unspecified.
    #[serde(default)]
    pub access_keys: Vec<AccessKeyMetrics>,
}

/// The `server` part of [`ServerMetrics`].
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ServerTotals {
    /// Tunnel time summed over locations.
    pub tunnel_time: TunnelTime,
    /// Bytes leaving the server, summed over locations.
    pub data_transferred: DataAmount,
    /// Current and peak throughput.
    pub bandwidth: Bandwidth,
    /// Per client location (country + AS).
    #[serde(default)]
    pub locations: Vec<LocationMetrics>,
}

/// `{"seconds": f64}`.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct TunnelTime {
    /// Seconds of tunnel time (device-seconds connected).
    pub seconds: f64,
}

/// `{"bytes": f64}`.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct DataAmount {
    /// Bytes (a float: Prometheus extrapolates).
    pub bytes: f64,
}

/// Throughput now and at its peak in the window.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Bandwidth {
    /// Bytes per second over the last 300 s.
    pub current: BandwidthSample,
    /// The highest 300 s rate in the window (0 if none).
    pub peak: BandwidthSample,
}

/// One throughput value.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct BandwidthSample {
    /// `data.bytes` is a rate here: **bytes per second**.
    pub data: DataAmount,
    /// When, in Unix seconds (fractional); `None` when there was no data.
    pub timestamp: Option<f64>,
}

impl BandwidthSample {
    /// [`BandwidthSample::timestamp`] as a date.
    pub fn time(&self) -> Option<DateTime<Utc>> {
        self.timestamp.and_then(unix_seconds)
    }
}

/// Traffic from one client location.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LocationMetrics {
    /// ISO country code; `XL` when the server has no GeoIP database; absent when unlabelled.
    #[serde(default)]
    pub location: Option<String>,
    /// Autonomous system number, if known.
    #[serde(default)]
    pub asn: Option<u64>,
    /// Autonomous system organisation, if known.
    #[serde(default)]
    pub as_org: Option<String>,
    /// Bytes from this location.
    pub data_transferred: DataAmount,
    /// Tunnel time from this location.
    pub tunnel_time: TunnelTime,
}

/// One access key's aggregates.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AccessKeyMetrics {
    /// The key id as JavaScript's `parseInt` reads it: `None` for ids that do not start
    /// with a number (`alpha-key`), and then not distinguishable from each other — use
    /// [`TransferMetrics`] for those. Signed, because an id given with
    /// `PUT /access-keys/{id}` may be `"-5"`; a number that does not fit is read as `None`.
    #[serde(default, deserialize_with = "lenient_key_id")]
    pub access_key_id: Option<i64>,
    /// Bytes this key transferred in the window.
    pub data_transferred: DataAmount,
    /// This key's tunnel time in the window.
    pub tunnel_time: TunnelTime,
    /// Connection activity.
    pub connection: ConnectionMetrics,
}

/// Connection activity of one key.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ConnectionMetrics {
    /// The last 300 s bucket with traffic, Unix seconds; `None` if none. Outline Manager
    /// shows a key as online when this is within 5 minutes.
    #[serde(default)]
    pub last_traffic_seen: Option<f64>,
    /// The most devices seen at once.
    pub peak_device_count: PeakDeviceCount,
}

impl ConnectionMetrics {
    /// [`ConnectionMetrics::last_traffic_seen`] as a date.
    pub fn last_traffic_seen_at(&self) -> Option<DateTime<Utc>> {
        self.last_traffic_seen.and_then(unix_seconds)
    }
}

/// The peak number of devices and when it was seen.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct PeakDeviceCount {
    /// `ceil(max tunnel seconds per 300 s bucket / 300)`; 0 if none.
    pub data: u64,
    /// When, Unix seconds; `None` if never.
    #[serde(default)]
    pub timestamp: Option<f64>,
}

fn lenient_key_id<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<i64>, D::Error> {
    struct KeyId;
    impl Visitor<'_> for KeyId {
        type Value = Option<i64>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an integer or null")
        }

        fn visit_unit<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_none<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_i64<E: de::Error>(self, value: i64) -> std::result::Result<Self::Value, E> {
            Ok(Some(value))
        }

        fn visit_u64<E: de::Error>(self, value: u64) -> std::result::Result<Self::Value, E> {
            Ok(i64::try_from(value).ok())
        }

        fn visit_f64<E: de::Error>(self, value: f64) -> std::result::Result<Self::Value, E> {
            // parseInt of a very long digit string gives a float like 1e+21.
            const LIMIT: f64 = 9_223_372_036_854_775_808.0;
            if value.is_finite() && value.fract() == 0.0 && value.abs() < LIMIT {
                #[allow(
                    clippy::cast_possible_truncation,
                    reason = "checked above: integral and within i64"
                )]
                return Ok(Some(value as i64));
            }
            Ok(None)
        }
    }
    deserializer.deserialize_any(KeyId)
}

/// Fractional Unix seconds to a date, at millisecond precision.
pub(crate) fn unix_seconds(seconds: f64) -> Option<DateTime<Utc>> {
    if !seconds.is_finite() {
        return None;
    }
    #[allow(
        clippy::cast_possible_truncation,
        reason = "out-of-range values saturate and are rejected by from_timestamp_millis"
    )]
    let millis = (seconds * 1000.0).round() as i64;
    DateTime::from_timestamp_millis(millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_grammar() {
        for (text, seconds) in [
            ("1h", 3600),
            ("1.5h", 5400),
            ("30d", 2_592_000),
            ("38d", 3_283_200),
            ("1w", 604_800),
            ("2w", 1_209_600),
            ("3299700s", 3_299_700),
            ("0.5d", 43_200),
            ("1.0000000000h", 3600),
            ("0.50000000000000000000000000d", 43_200),
            ("1.0s", 1),
            ("0001.10h", 3960),
        ] {
            assert_eq!(text.parse::<Since>().unwrap().as_secs(), seconds, "{text}");
        }
        for bad in [
            "",
            "1m",
            "abc",
            "d",
            "0s",
            "-1h",
            "39d",
            "90d",
            "1.h",
            ".5h",
            "1.0001s",
            "1 h",
            "2026-10-23T09:41:00Z",
            "3299701s",
        ] {
            assert!(bad.parse::<Since>().is_err(), "{bad}");
        }
    }

    #[test]
    fn since_renders_in_the_largest_exact_unit() {
        assert_eq!(Since::from_secs(1).unwrap().to_string(), "1s");
        assert_eq!(Since::from_secs(7200).unwrap().to_string(), "2h");
        assert_eq!(Since::days(14).unwrap().to_string(), "2w");
        assert_eq!(Since::MAX.to_string(), "3299700s");
        assert_eq!(Since::MAX.as_secs(), Since::MAX_SECONDS);
        assert!(Since::from_duration(Duration::from_millis(1500)).is_err());
        assert!(Since::weeks(6).is_err());
    }

    #[test]
    fn transfer_visitor_edge_cases() {
        let parsed: TransferMetrics =
            serde_json::from_str(r#"{"":1,"a\"b":2,"é":18446744073709551615,"x":3}"#).unwrap();
        let collected: Vec<_> = parsed.iter().collect();
        assert_eq!(collected, [("", 1), ("a\"b", 2), ("é", u64::MAX), ("x", 3)]);
        assert!(serde_json::from_str::<TransferMetrics>(r#"{"a":3.0}"#).is_err());
        assert!(serde_json::from_str::<TransferMetrics>(r#"{"a":-1}"#).is_err());
        assert!(serde_json::from_str::<TransferMetrics>(r#"{"a":1.5}"#).is_err());
        assert!(serde_json::from_str::<TransferMetrics>(r#"{"a":"1"}"#).is_err());
        assert!(serde_json::from_str::<TransferMetrics>(r"[]").is_err());
        let empty: TransferMetrics = serde_json::from_str("{}").unwrap();
        assert!(empty.is_empty());
        assert_eq!(
            serde_json::to_string(&parsed.iter().take(2).collect::<TransferMetrics>()).unwrap(),
            r#"{"":1,"a\"b":2}"#
        );
    }

    #[test]
    fn server_version_gate() {
        let mut server: Server = serde_json::from_str(
            r#"{"name":"s","serverId":"x","createdTimestampMs":1795340439404,"version":"dev"}"#,
        )
        .unwrap();
        assert_eq!(server.supports_server_metrics(), Some(true));
        for (version, expected) in [
            ("1.12.3", Some(true)),
            ("1.12.0", Some(true)),
            ("1.11.0", Some(false)),
            ("1.9.2", Some(false)),
            ("2.0.0", Some(true)),
            ("1.11.1-rc.1", Some(false)),
            ("banana", None),
        ] {
            server.version = Some(version.to_owned());
            assert_eq!(server.supports_server_metrics(), expected, "{version}");
        }
        assert_eq!(
            server.created_at().unwrap().timestamp_millis(),
            1_795_340_439_404
        );
    }

    #[test]
    fn key_ids_follow_parse_int() {
        let keys: Vec<AccessKeyMetrics> = serde_json::from_str(
            r#"[
            {"accessKeyId":3,"dataTransferred":{"bytes":1.5},"tunnelTime":{"seconds":2},"connection":{"lastTrafficSeen":null,"peakDeviceCount":{"data":0,"timestamp":null}}},
            {"accessKeyId":null,"dataTransferred":{"bytes":1},"tunnelTime":{"seconds":2},"connection":{"lastTrafficSeen":1795340862.433,"peakDeviceCount":{"data":4,"timestamp":1795340700}}},
            {"accessKeyId":-5,"dataTransferred":{"bytes":1},"tunnelTime":{"seconds":2},"connection":{"peakDeviceCount":{"data":1}}},
            {"accessKeyId":1e21,"dataTransferred":{"bytes":1},"tunnelTime":{"seconds":2},"connection":{"peakDeviceCount":{"data":1}}}
        ]"#,
        )
        .unwrap();
        let ids: Vec<_> = keys.iter().map(|k| k.access_key_id).collect();
        assert_eq!(ids, [Some(3), None, Some(-5), None]);
        assert_eq!(
            keys[1]
                .connection
                .last_traffic_seen_at()
                .unwrap()
                .timestamp_millis(),
            1_795_340_862_433
        );
    }

    /// The serde path alone, for comparing with the scanner.
    fn via_serde(body: &str) -> Option<TransferMetrics> {
        serde_json::from_str::<TransferResponse>(body)
            .ok()
            .map(|r| r.bytes_transferred_by_user_id)
    }

    #[test]
    fn transfer_scanner_agrees_with_serde() {
        for body in [
            r#"{"bytesTransferredByUserId":{}}"#,
            r#"{"bytesTransferredByUserId":{"0":76609,"alpha-key":365474,"10":5958113497}}"#,
            " {\n \"bytesTransferredByUserId\" : {\n  \"1\" : 0 ,\t\"\" : 18446744073709551615\r\n }\n}\n",
            r#"{"bytesTransferredByUserId":{"ключ":1,"a:b":2,"1":3,"1":4}}"#,
            r#"{"bytesTransferredByUserId":{"a\"b":1,"\u0041":2,"\\":3,"\ud83d\ude00\/":4}}"#,
        ] {
            let scanned = scan_transfer(body.as_bytes());
            assert!(scanned.is_some(), "the scanner should take {body:?}");
            assert_eq!(scanned, via_serde(body), "{body:?}");
            assert_eq!(
                TransferMetrics::from_json(body.as_bytes()).ok(),
                via_serde(body)
            );
        }
    }

    #[test]
    fn transfer_scanner_leaves_the_unusual_to_serde() {
        for body in [
            // Accepted by serde: other fields.
            r#"{"other":1,"bytesTransferredByUserId":{"1":1}}"#,
            r#"{"bytesTransferredByUserId":{"1":1},"other":[]}"#,
            // Rejected by serde, with its error: the scanner must not accept them either.
            r#"{"bytesTransferredByUserId":{"1":-1}}"#,
            r#"{"bytesTransferredByUserId":{"1":1.0,"2":1e3}}"#,
            r#"{"bytesTransferredByUserId":{"1":01}}"#,
            r#"{"bytesTransferredByUserId":{"1":18446744073709551616}}"#,
            r#"{"bytesTransferredByUserId":{"1":1,}}"#,
            r#"{"bytesTransferredByUserId":{"1":1}"#,
            r#"{"bytesTransferredByUserId":{"\ud800":1}}"#,
            r#"{"bytesTransferredByUserId":{"\x":1}}"#,
            r#"{"bytesTransferredByUserId":{"\"#,
            r#"{"bytesTransferredByUserId":{"1":1}}}"#,
            r#"{"bytesTransferredByUserId":{"1" 1}}"#,
            "{\"bytesTransferredByUserId\":{\"a\tb\":1}}",
            "",
        ] {
            assert_eq!(scan_transfer(body.as_bytes()), None, "{body:?}");
            assert_eq!(
                TransferMetrics::from_json(body.as_bytes()).ok(),
                via_serde(body),
                "{body:?}"
            );
        }
        let err =
            TransferMetrics::from_json(br#"{"bytesTransferredByUserId":{"1":-1}}"#).unwrap_err();
        assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    }

    /// A repeated id: serde_json's maps and JavaScript's `JSON.parse` keep the last value,
    /// at the first occurrence's position. Every accessor must agree on it, on both paths.
    #[test]
    fn transfer_repeated_ids_keep_the_last_value() {
        for (body, expected) in [
            (
                r#"{"bytesTransferredByUserId":{"1":3,"1":4}}"#,
                &[("1", 4)][..],
            ),
            (
                r#"{"bytesTransferredByUserId":{"1":3,"\u0031":4}}"#,
                &[("1", 4)][..],
            ),
            (
                r#"{"bytesTransferredByUserId":{"1":1,"2":2,"a":3,"1":5,"":6,"a":7,"":8,"3":9,"2":0}}"#,
                &[("1", 5), ("2", 0), ("a", 7), ("", 8), ("3", 9)][..],
            ),
            (
                r#"{"bytesTransferredByUserId":{"10":1,"9":2,"10":3}}"#,
                &[("10", 3), ("9", 2)][..],
            ),
            (
                r#"{"bytesTransferredByUserId":{"12345678901234567890":1,"1234567890123456789\u0030":2}}"#,
                &[("12345678901234567890", 2)][..],
            ),
            (
                r#"{"bytesTransferredByUserId":{"1":1,"\u0031":2,"2":3}}"#,
                &[("1", 2), ("2", 3)][..],
            ),
        ] {
            for metrics in [
                TransferMetrics::from_json(body.as_bytes()).unwrap(),
                via_serde(body).unwrap(),
            ] {
                assert_eq!(metrics.iter().collect::<Vec<_>>(), expected, "{body}");
                assert_eq!(metrics.len(), expected.len(), "{body}");
                assert_eq!(
                    metrics.total(),
                    expected.iter().map(|(_, bytes)| bytes).sum::<u64>(),
                    "{body}"
                );
                for (id, bytes) in expected {
                    assert_eq!(metrics.get(id), Some(*bytes), "{body}: {id}");
                    assert_eq!(metrics.to_map()[*id], *bytes, "{body}: {id}");
                }
            }
        }
        let collected: TransferMetrics = [("x", 1), ("y", 2), ("x", 3)].into_iter().collect();
        assert_eq!(collected.iter().collect::<Vec<_>>(), [("x", 3), ("y", 2)]);
    }

    /// Every way the builder knows an id is new — byte order, numbers first, the table —
    /// and every move between them finds a repeat, at any point of the body.
    #[test]
    fn transfer_repeats_are_found_in_every_order() {
        let orders: [&[&str]; 5] = [
            &["", "0", "1", "10", "100", "11", "2", "a", "b"],
            &["0", "1", "2", "9", "10", "11", "100", "a", "", "b"],
            &["0", "1", "10", "2", "11", "a", "b"],
            &["a", "b", "0", "1", "c"],
            &["10", "9", "b", "a", "1"],
        ];
        for ids in orders {
            for repeated in 0..ids.len() {
                for at in repeated + 1..=ids.len() {
                    let mut sent: Vec<(&str, u64)> = ids.iter().copied().zip(1..).collect();
                    sent.insert(at, (ids[repeated], 1000));
                    let mut expected: Vec<(&str, u64)> = ids.iter().copied().zip(1..).collect();
                    expected[repeated].1 = 1000;
                    let built: TransferMetrics = sent.iter().copied().collect();
                    assert_eq!(built.iter().collect::<Vec<_>>(), expected, "{sent:?}");
                    let body = format!(
                        r#"{{"bytesTransferredByUserId":{{{}}}}}"#,
                        sent.iter()
                            .map(|(id, bytes)| format!(r#""{id}":{bytes}"#))
                            .collect::<Vec<_>>()
                            .join(",")
                    );
                    let scanned = scan_transfer(body.as_bytes()).unwrap();
                    assert_eq!(scanned.iter().collect::<Vec<_>>(), expected, "{body}");
                }
            }
        }
    }

    /// A byte count is read as `u64` reads it: a fraction or an exponent is refused whatever
    /// its value, since a float cannot tell `1.0000000000000001` from `1`.
    #[test]
    fn transfer_counts_with_a_fraction_or_exponent_are_refused() {
        for literal in [
            "1.0000000000000001",
            "4.9999999999999999",
            "1e-400",
            "1e400",
            "1.0",
            "1e3",
            "1E3",
            "0.0",
            "0e0",
            "1.5",
            "-0",
            "-0.0",
            "-1",
            "01",
            "00",
            "18446744073709551616",
            "18446744073709551615.0",
            "99999999999999999999999999999999999999",
        ] {
            let body = format!(r#"{{"bytesTransferredByUserId":{{"1":{literal}}}}}"#);
            assert!(via_serde(&body).is_none(), "serde took {literal}");
            assert!(
                TransferMetrics::from_json(body.as_bytes()).is_err(),
                "from_json took {literal}"
            );
        }
        for (literal, value) in [("0", 0), ("18446744073709551615", u64::MAX), ("7", 7)] {
            let body = format!(r#"{{"bytesTransferredByUserId":{{"1":{literal}}}}}"#);
            assert_eq!(via_serde(&body).unwrap().get("1"), Some(value));
            assert_eq!(
                TransferMetrics::from_json(body.as_bytes())
                    .unwrap()
                    .get("1"),
                Some(value)
            );
        }
    }

    /// The eight-at-a-time digit reading against the plain one, for every run length and
    /// every byte that can end it.
    #[test]
    fn transfer_counts_read_eight_digits_at_a_time_exactly() {
        let reference = |text: &[u8]| -> Option<(u64, usize)> {
            let end = text
                .iter()
                .position(|b| !b.is_ascii_digit())
                .unwrap_or(text.len());
            let digits = std::str::from_utf8(&text[..end]).ok()?;
            if end == 0 || (end > 1 && text[0] == b'0') {
                return None;
            }
            if let Some(b'.' | b'e' | b'E') = text.get(end) {
                return None;
            }
            Some((digits.parse().ok()?, end))
        };
        for digits in [
            "18446744073709551615",
            "98765432109876543210",
            "10000000000000000000",
        ] {
            for length in 0..=digits.len() {
                for end in 0..=255u8 {
                    for padding in [0, 7, 8, 16] {
                        let mut text = digits.as_bytes()[..length].to_vec();
                        text.push(end);
                        text.extend(std::iter::repeat_n(b' ', padding));
                        assert_eq!(
                            scan_count(&text, 0),
                            reference(&text),
                            "{:?}",
                            String::from_utf8_lossy(&text)
                        );
                    }
                }
            }
        }
    }

    /// Twelve bytes a key, whatever the count: a 100 000-key body from the server then
    /// decodes into less memory than its own size.
    #[test]
    fn transfer_entries_take_twelve_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 12);
        for bytes in [0, 1, u64::from(u32::MAX), 1 << 32, u64::MAX - 1, u64::MAX] {
            let mut entry = Entry::new(7, 0).unwrap();
            entry.set_bytes(bytes);
            assert_eq!((entry.end(), entry.bytes()), (7, bytes));
        }
        assert!(Entry::new(1 << 32, 1).is_none());
    }

    /// No allocation is sized by counting a byte of the body: an id made of `:` once
    /// reserved one entry per colon.
    #[test]
    fn transfer_entries_grow_with_the_ids_not_with_a_byte_count() {
        let body = format!(
            r#"{{"bytesTransferredByUserId":{{"{}":1,"a":2}}}}"#,
            ":".repeat(1 << 20)
        );
        let metrics = TransferMetrics::from_json(body.as_bytes()).unwrap();
        assert_eq!(metrics.len(), 2);
        assert!(
            metrics.entries.capacity() < 64,
            "{} entries reserved for 2 ids",
            metrics.entries.capacity()
        );
    }
}
