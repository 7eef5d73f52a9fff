//! List parameters and transparent pagination.
//!
//! List routes take `offset`, `length` (at most 100), `orderby`, `sort` and usually a `name`
//! substring filter, and answer with `query: {found, length, offset, total}`. The `list_all_*`
//! methods follow the pages as a [`Stream`]: the next offset is the current one plus the
//! items received, and the stream ends when the offset reaches `found` (not `total`, which
//! counts everything the account has and would keep asking for empty pages), when a page is
//! empty, or when the server sends no `query` (then its answer is the only page).

use std::collections::VecDeque;
use std::fmt;

use futures_util::Stream;
use metrics_core::http::Request;
use metrics_core::{Error, Result};
use serde::de::DeserializeOwned;

use crate::BACKEND;
use crate::client::AppOpticsClient;
use crate::model::Page;
use crate::validate::MAX_PAGE_LENGTH;

/// The sort order of a list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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

    pub(crate) fn apply(&self, mut request: Request, offset: Option<u64>) -> Request {
        if let Some(name) = &self.name {
            request = request.with_query("name", name);
        }
        if let Some(offset) = offset.or(self.offset) {
            request = request.with_query("offset", offset.to_string());
        }
        if let Some(length) = self.length {
            request = request.with_query("length", length.to_string());
        }
        if let Some(orderby) = &self.orderby {
            request = request.with_query("orderby", orderby);
        }
        if let Some(sort) = self.sort {
            request = request.with_query("sort", sort.to_string());
        }
        for (name, value) in &self.extra {
            request = request.with_query(name, value);
        }
        request
    }
}

/// Where the next page starts, or `None` when `page` was the last.
pub(crate) fn next_offset<T>(page: &Page<T>, offset: u64) -> Option<u64> {
    if page.items.is_empty() {
        return None;
    }
    let found = page.query.found?;
    let next = page.query.offset.unwrap_or(offset) + page.items.len() as u64;
    (next < found).then_some(next)
}

struct Pager<T> {
    client: AppOpticsClient,
    path: &'static str,
    params: ListParams,
    offset: Option<u64>,
    buffer: VecDeque<T>,
    started: bool,
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
    let state = Pager {
        client,
        path,
        offset: params.offset,
        params,
        buffer: VecDeque::new(),
        started: false,
    };
    futures_util::stream::unfold(Some(state), |state| async move {
        let mut state = state?;
        loop {
            if let Some(item) = state.buffer.pop_front() {
                return Some((Ok(item), Some(state)));
            }
            // `offset` is None once the last page has been read.
            let offset = match (state.started, state.offset) {
                (true, None) => return None,
                (_, offset) => offset,
            };
            if !state.started
                && let Err(error) = state.params.validate()
            {
                return Some((Err(error), None));
            }
            state.started = true;
            let request = state.params.apply(Request::get(state.path), offset);
            let page: Page<T> = match state.client.get_json(request).await {
                Ok(page) => page,
                Err(error) => return Some((Err(error), None)),
            };
            state.offset = next_offset(&page, offset.unwrap_or(0));
            if page.items.is_empty() {
                return None;
            }
            state.buffer.extend(page.items);
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
    fn ends_on_found_not_total() {
        let q = |offset, found| QueryInfo {
            found: Some(found),
            length: Some(100),
            offset: Some(offset),
            total: Some(250),
        };
        assert_eq!(next_offset(&page(3, q(0, 3)), 0), None);
        assert_eq!(next_offset(&page(100, q(0, 150)), 0), Some(100));
        assert_eq!(next_offset(&page(50, q(100, 150)), 100), None);
        assert_eq!(next_offset(&page(0, q(0, 150)), 0), None);
        assert_eq!(next_offset(&page(5, QueryInfo::default()), 0), None);
    }

    #[test]
    fn params_encode() {
        let request = ListParams::new()
            .with_name("a b")
            .with_length(5)
            .with_sort(SortOrder::Desc)
            .apply(Request::get("metrics"), Some(10));
        assert_eq!(request.path(), "metrics");
        assert!(ListParams::new().with_length(101).validate().is_err());
        assert!(ListParams::new().with_length(0).validate().is_err());
        assert!(ListParams::new().with_length(100).validate().is_ok());
    }
}
