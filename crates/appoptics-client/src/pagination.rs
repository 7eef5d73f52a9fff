//! List parameters and transparent pagination.
//!
//! List routes take `offset`, `length` (at most 100), `orderby`, `sort` and usually a `name`
//! substring filter, and answer with `query: {found, length, offset, total}`. The `list_all_*`
//! methods follow the pages as a [`Stream`] with the core's
//! [`Paginator`]: the next offset is the offset the server says it
//! served plus the items received, and the stream ends when the offset reaches `found` (not
//! `total`, which counts everything the account has and would keep asking for empty pages),
//! when a page is empty, or when the server sends no `query` (then its answer is the only
//! page). A server that does not move past an offset (one that answers the first page
//! whatever `offset` says) ends the stream with an [`Error::Decode`] instead of a loop.

use std::fmt;

use futures_util::Stream;
use metrics_core::http::Request;
use metrics_core::paginate::{Page as CorePage, Paginator};
use metrics_core::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::BACKEND;
use crate::client::AppOpticsClient;
use crate::model::Page;
use crate::validate::MAX_PAGE_LENGTH;

/// The sort order of a list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    /// Ascending (the default).
    #[default]
    Asc,
    /// Descending.
    Desc,
}

impl fmt::Display for SortOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Asc => "asc",
            Self::Desc => "desc",
        })
    }
}

/// Parameters of a list route.
///
/// ```
/// use appoptics_client::pagination::ListParams;
///
/// let params = ListParams::new().with_name("api").with_offset(20).with_length(10);
/// assert_eq!(params.length, Some(10));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct ListParams {
    /// Case-insensitive substring of the name (`title` for services is not filtered).
    pub name: Option<String>,
    /// The first item.
    pub offset: Option<u64>,
    /// Items per page, 1 to 100.
    pub length: Option<u32>,
    /// The field to order by.
    pub orderby: Option<String>,
    /// The order.
    pub sort: Option<SortOrder>,
    /// Other parameters, sent as they are (`version` for alerts).
    pub extra: Vec<(String, String)>,
}

impl ListParams {
    /// No filter, the server's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Filters on a name substring.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Starts at `offset`.
    pub fn with_offset(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }

    /// Sets the page size (1 to 100).
    pub fn with_length(mut self, length: u32) -> Self {
        self.length = Some(length);
        self
    }

    /// Orders by `field`.
    pub fn with_orderby(mut self, field: impl Into<String>) -> Self {
        self.orderby = Some(field.into());
        self
    }

    /// Sets the order.
    pub fn with_sort(mut self, sort: SortOrder) -> Self {
        self.sort = Some(sort);
        self
    }

    /// Adds another parameter.
    pub fn with_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.push((name.into(), value.into()));
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if let Some(length) = self.length
            && (length == 0 || length > MAX_PAGE_LENGTH)
        {
            return Err(Error::invalid_input(
                BACKEND,
                format!("page length {length} is out of range; it must be 1 to {MAX_PAGE_LENGTH}"),
            ));
        }
        Ok(())
    }

    /// The request for one page, starting at `offset` (or the one set here) with `length`
    /// items (or the one set here).
    pub(crate) fn request(
        &self,
        path: &str,
        offset: Option<u64>,
        length: Option<u32>,
    ) -> Result<Request> {
        #[derive(Serialize)]
        struct Query<'a> {
            name: Option<&'a str>,
            offset: Option<u64>,
            length: Option<u32>,
            orderby: Option<&'a str>,
            sort: Option<SortOrder>,
        }
        let query = Query {
            name: self.name.as_deref(),
            offset: offset.or(self.offset),
            length: length.or(self.length),
            orderby: self.orderby.as_deref(),
            sort: self.sort,
        };
        let mut request = Request::get(path).with_query_params(BACKEND, &query)?;
        for (name, value) in &self.extra {
            request = request.with_query(name, value);
        }
        Ok(request)
    }
}

/// What the paginator needs to know of one page read at `offset`.
pub(crate) fn core_page<T>(page: Page<T>, offset: u64) -> CorePage<T> {
    let Some(found) = page.query.found else {
        // No `query` (or one without `found`): the answer is the whole list.
        return CorePage::last(page.items);
    };
    let next = page.query.offset.unwrap_or(offset) + page.items.len() as u64;
    CorePage::new(page.items)
        .with_total(found)
        .with_next_offset(next)
}

/// Every item of a list route, page after page.
pub(crate) fn paginate<T>(
    client: AppOpticsClient,
    path: &'static str,
    params: ListParams,
) -> impl Stream<Item = Result<T>> + Send + 'static
where
    T: DeserializeOwned + Send + 'static,
{
    let length = params.length.unwrap_or(MAX_PAGE_LENGTH);
    let paginator = Paginator::new(BACKEND)
        .starting_at(params.offset.unwrap_or(0))
        .with_limit(length);
    paginator.stream(move |offset, _length| {
        let client = client.clone();
        let params = params.clone();
        async move {
            params.validate()?;
            // The first page is asked for as the caller wrote it (no `offset=0`, no `length`
            // unless set: the server's default is the maximum).
            let offset = (offset > 0 || params.offset.is_some()).then_some(offset);
            let request = params.request(path, offset, None)?;
            let page: Page<T> = client.get_json(request).await?;
            Ok(core_page(page, offset.unwrap_or(0)))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::QueryInfo;

    fn page(items: usize, query: QueryInfo) -> Page<u8> {
        Page {
            query,
            items: vec![0; items],
        }
    }

    #[test]
    fn pages_end_on_found_not_total() {
        let q = |offset, found| QueryInfo {
            found: Some(found),
            length: Some(100),
            offset: Some(offset),
            total: Some(250),
        };
        let last = |p: CorePage<u8>| (p.total, p.next_offset, p.is_last);
        assert_eq!(
            last(core_page(page(3, q(0, 3)), 0)),
            (Some(3), Some(3), false)
        );
        assert_eq!(
            last(core_page(page(100, q(0, 150)), 0)),
            (Some(150), Some(100), false)
        );
        // The offset the server says it served wins over the one asked for.
        assert_eq!(
            last(core_page(page(50, q(100, 150)), 7)),
            (Some(150), Some(150), false)
        );
        assert_eq!(
            last(core_page(page(5, QueryInfo::default()), 0)),
            (None, None, true)
        );
    }

    #[test]
    fn params_encode() {
        let request = ListParams::new()
            .with_name("a b")
            .with_length(5)
            .with_sort(SortOrder::Desc)
            .with_param("version", "2")
            .request("metrics", Some(10), None)
            .unwrap();
        assert_eq!(request.path(), "metrics");
        let pairs: Vec<(&str, &str)> = request
            .query()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("name", "a b"),
                ("offset", "10"),
                ("length", "5"),
                ("sort", "desc"),
                ("version", "2")
            ]
        );
        assert!(ListParams::new().with_length(101).validate().is_err());
        assert!(ListParams::new().with_length(0).validate().is_err());
        assert!(ListParams::new().with_length(100).validate().is_ok());
    }
}
