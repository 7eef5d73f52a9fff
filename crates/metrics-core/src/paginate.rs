//! Following an offset-paginated list to its end, and only to its end.
//!
//! A list route that pages by `offset` and `limit` is followed by [`Paginator::stream`]: the
//! caller says how to fetch one page, the paginator asks for the pages in order and yields
//! their items one by one. It stops
//!
//! * when the next offset reaches the list's total, if the server says it;
//! * at the first empty page;
//! * at a page the caller marks as the last ([`Page::last`]);
//!
//! and ends with an [`Error::Decode`] instead of looping when the server does not move: a page
//! whose next offset is not past the offset it was asked for (a server that ignores `offset`
//! and answers the first page every time), or more pages than the hard cap
//! ([`Paginator::with_max_pages`]). The items of the page that did not advance are not
//! yielded: they are the ones already seen.

use std::collections::VecDeque;
use std::future::Future;

use futures_util::Stream;

use crate::error::{Error, Result};

/// The number of pages after which a list is abandoned unless set otherwise: with 100 items
/// a page, a million items.
pub const DEFAULT_MAX_PAGES: u32 = 10_000;

/// One page of a list, as the caller's fetch function read it from the server.
///
/// ```
/// use metrics_core::paginate::Page;
///
/// // Items 100..150 of 150: the server echoed the offset it served and the total.
/// let page = Page::new(vec!["a"; 50]).with_total(150).with_next_offset(150);
/// assert_eq!(page.items.len(), 50);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// How many items the whole list has (offsets `0..total`), when the server says.
    pub total: Option<u64>,
    /// Where the next page starts, when the server says; otherwise the offset asked for plus
    /// the number of items.
    pub next_offset: Option<u64>,
    /// The server said there is nothing after this page.
    pub is_last: bool,
}

impl<T> Page<T> {
    /// A page of `items`, with no total: the list goes on until an empty page.
    pub fn new(items: Vec<T>) -> Self {
        Self {
            items,
            total: None,
            next_offset: None,
            is_last: false,
        }
    }

    /// The only or the final page: nothing is fetched after it.
    pub fn last(items: Vec<T>) -> Self {
        Self {
            is_last: true,
            ..Self::new(items)
        }
    }

    /// Sets how many items the whole list has.
    #[must_use]
    pub fn with_total(mut self, total: u64) -> Self {
        self.total = Some(total);
        self
    }

    /// Sets where the next page starts (typically the offset the server says it served plus
    /// the number of items).
    #[must_use]
    pub fn with_next_offset(mut self, offset: u64) -> Self {
        self.next_offset = Some(offset);
        self
    }
}

/// Follows an offset-paginated list (see the [module docs](self)).
///
/// ```
/// use futures_util::TryStreamExt;
/// use metrics_core::paginate::{Page, Paginator};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let list: Vec<u32> = (0..25).collect();
/// // A well-behaved server: pages of `limit` items from `offset`, and the total.
/// let fetch = |offset: u64, limit: u32| {
///     let list = list.clone();
///     async move {
///         let start = offset as usize;
///         let end = (start + limit as usize).min(list.len());
///         Ok(Page::new(list[start..end].to_vec()).with_total(list.len() as u64))
///     }
/// };
/// let items: Vec<u32> = Paginator::new("example").with_limit(10).stream(fetch).try_collect().await?;
/// assert_eq!(items, list);
///
/// // A server that ignores `offset` and always answers the first page.
/// let stuck = |_offset: u64, _limit: u32| async {
///     Ok(Page::new(vec![1, 2, 3]).with_total(12).with_next_offset(3))
/// };
/// let err = Paginator::new("example").stream(stuck).try_collect::<Vec<u32>>().await.unwrap_err();
/// assert!(err.to_string().contains("did not advance past offset 3"), "{err}");
/// # Ok::<(), metrics_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct Paginator {
    backend: &'static str,
    start: u64,
    limit: u32,
    max_pages: u32,
}

impl Paginator {
    /// Starts at offset 0, 100 items a page, at most [`DEFAULT_MAX_PAGES`] pages.
    pub fn new(backend: &'static str) -> Self {
        Self {
            backend,
            start: 0,
            limit: 100,
            max_pages: DEFAULT_MAX_PAGES,
        }
    }

    /// Starts at `offset`.
    pub fn starting_at(mut self, offset: u64) -> Self {
        self.start = offset;
        self
    }

    /// Asks for `limit` items a page.
    pub fn with_limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }

    /// Gives up with an error when the list needs more than `max_pages` pages (at least 1).
    pub fn with_max_pages(mut self, max_pages: u32) -> Self {
        self.max_pages = max_pages.max(1);
        self
    }

    /// The items of every page, in order. `fetch(offset, limit)` reads one page.
    ///
    /// The stream ends after the first error (the fetch's own, or the paginator's
    /// [`Error::Decode`] for a list that does not advance or is longer than the cap).
    pub fn stream<T, F, Fut>(self, fetch: F) -> impl Stream<Item = Result<T>>
    where
        F: FnMut(u64, u32) -> Fut,
        Fut: Future<Output = Result<Page<T>>>,
    {
        let state = State {
            offset: self.start,
            config: self,
            fetch,
            buffer: VecDeque::new(),
            pages: 0,
            finished: false,
        };
        futures_util::stream::unfold(Some(state), |state| async move {
            let mut state = state?;
            loop {
                if let Some(item) = state.buffer.pop_front() {
                    return Some((Ok(item), Some(state)));
                }
                if state.finished {
                    return None;
                }
                if state.pages >= state.config.max_pages {
                    let error = Error::decode(
                        state.config.backend,
                        "",
                        format!(
                            "the list did not end after {} pages (at offset {}); it is either longer than the limit or the server keeps answering pages",
                            state.pages, state.offset
                        ),
                    );
                    return Some((Err(error), None));
                }
                state.pages += 1;
                let page = match (state.fetch)(state.offset, state.config.limit).await {
                    Ok(page) => page,
                    Err(error) => return Some((Err(error), None)),
                };
                if let Err(error) = state.advance(page) {
                    return Some((Err(error), None));
                }
            }
        })
    }
}

struct State<F, T> {
    config: Paginator,
    fetch: F,
    offset: u64,
    buffer: VecDeque<T>,
    pages: u32,
    finished: bool,
}

impl<F, T> State<F, T> {
    /// Takes in the page read at `self.offset` and moves to the next one.
    fn advance(&mut self, page: Page<T>) -> Result<()> {
        if page.items.is_empty() {
            self.finished = true;
            return Ok(());
        }
        let received = page.items.len() as u64;
        let next = page
            .next_offset
            .unwrap_or_else(|| self.offset.saturating_add(received));
        if page.is_last {
            // The caller read the end from the page itself: nothing is asked after it, so
            // the offset it says does not matter.
            self.finished = true;
        } else if next <= self.offset {
            // Before the total: a page that does not advance repeats items already yielded,
            // even when its `next` happens to reach the total.
            return Err(Error::decode(
                self.config.backend,
                "",
                format!(
                    "the server did not advance past offset {}: the page it answered ends at offset {next}; stopping instead of reading the same items again",
                    self.offset
                ),
            ));
        } else if page.total.is_some_and(|total| next >= total) {
            self.finished = true;
        }
        self.buffer.extend(page.items);
        self.offset = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_util::{StreamExt, TryStreamExt};

    use super::*;

    fn run<T>(future: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    /// A server over `0..len` that serves `limit` items from `offset` and says the total.
    fn honest(len: u64) -> impl FnMut(u64, u32) -> std::future::Ready<Result<Page<u64>>> {
        move |offset, limit| {
            let end = (offset + u64::from(limit)).min(len);
            std::future::ready(Ok(Page::new((offset..end).collect()).with_total(len)))
        }
    }

    #[test]
    fn reads_every_item_once_and_stops_at_the_total() {
        for len in [0, 1, 9, 10, 11, 100, 101] {
            let calls = Arc::new(AtomicUsize::new(0));
            let counter = calls.clone();
            let mut inner = honest(len);
            let fetch = move |offset, limit| {
                counter.fetch_add(1, Ordering::SeqCst);
                inner(offset, limit)
            };
            let items: Vec<u64> = run(Paginator::new("t")
                .with_limit(10)
                .stream(fetch)
                .try_collect())
            .unwrap();
            assert_eq!(items, (0..len).collect::<Vec<_>>());
            // Stops at the total without asking for an empty page (one request for an empty list).
            assert_eq!(
                calls.load(Ordering::SeqCst) as u64,
                len.div_ceil(10).max(1),
                "len {len}"
            );
        }
    }

    #[test]
    fn starts_where_asked() {
        let items: Vec<u64> = run(Paginator::new("t")
            .starting_at(95)
            .with_limit(3)
            .stream(honest(100))
            .try_collect())
        .unwrap();
        assert_eq!(items, [95, 96, 97, 98, 99]);
    }

    #[test]
    fn without_a_total_stops_at_the_first_empty_page() {
        let fetch = |offset: u64, _limit| {
            let items = if offset < 6 {
                vec![offset, offset + 1]
            } else {
                Vec::new()
            };
            std::future::ready(Ok(Page::new(items)))
        };
        let items: Vec<u64> = run(Paginator::new("t").stream(fetch).try_collect()).unwrap();
        assert_eq!(items, [0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn a_last_page_ends_the_list() {
        let fetch = |_offset, _limit| std::future::ready(Ok(Page::last(vec![7, 8])));
        let items: Vec<u8> = run(Paginator::new("t").stream(fetch).try_collect()).unwrap();
        assert_eq!(items, [7, 8]);
    }

    /// The server that always echoes `offset: 0` with `found: 12`: the first page is read,
    /// the second (the same items again) ends the list with an error, after two requests.
    #[test]
    fn a_server_that_does_not_advance_ends_with_an_error() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let fetch = move |_offset, _limit| {
            counter.fetch_add(1, Ordering::SeqCst);
            // The caller computes the next offset from the offset the server echoed.
            std::future::ready(Ok(Page::new(vec![1, 2, 3, 4, 5])
                .with_total(12)
                .with_next_offset(5)))
        };
        let results: Vec<Result<u8>> = run(Paginator::new("appoptics")
            .with_limit(5)
            .stream(fetch)
            .collect());
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(results.len(), 6);
        assert!(results[..5].iter().all(Result::is_ok));
        let err = results[5].as_ref().unwrap_err();
        assert!(
            matches!(
                err,
                Error::Decode {
                    backend: "appoptics",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("did not advance past offset 5"),
            "{err}"
        );
    }

    #[test]
    fn a_next_offset_behind_the_current_one_is_an_error() {
        let fetch = |offset: u64, _limit| {
            std::future::ready(Ok(
                Page::new(vec![offset]).with_next_offset(offset.saturating_sub(1).max(1))
            ))
        };
        let results: Vec<Result<u64>> =
            run(Paginator::new("t").starting_at(0).stream(fetch).collect());
        // 0 → 1 advances; 1 → 1 does not.
        assert_eq!(results.len(), 2);
        assert!(
            results[1]
                .as_ref()
                .unwrap_err()
                .to_string()
                .contains("past offset 1")
        );
    }

    /// A server that echoes offset 0 with `found: 10` and pages of 5: the second answer's
    /// next offset (5) reaches nothing new, even though a naive `next >= total` check on a
    /// larger echoed page could end the list quietly with duplicates.
    #[test]
    fn a_stuck_page_is_an_error_even_when_it_reaches_the_total() {
        let fetch = |_offset, _limit| {
            std::future::ready(Ok(Page::new(vec![0u8; 10])
                .with_total(10)
                .with_next_offset(10)))
        };
        // The first page holds everything: done, no error.
        let items: Vec<u8> = run(Paginator::new("t").stream(fetch).try_collect()).unwrap();
        assert_eq!(items.len(), 10);
        // Asked from offset 10, the server answers from 0 again: not an end, an error.
        let results: Vec<Result<u8>> =
            run(Paginator::new("t").starting_at(10).stream(fetch).collect());
        assert_eq!(results.len(), 1);
        assert!(
            results[0]
                .as_ref()
                .unwrap_err()
                .to_string()
                .contains("past offset 10")
        );
    }

    #[test]
    fn the_page_cap_is_the_last_guard() {
        // Advances by one forever, never says a total.
        let fetch = |offset: u64, _limit| std::future::ready(Ok(Page::new(vec![offset])));
        let results: Vec<Result<u64>> = run(Paginator::new("t")
            .with_max_pages(50)
            .stream(fetch)
            .collect());
        assert_eq!(results.len(), 51);
        let err = results[50].as_ref().unwrap_err();
        assert!(matches!(err, Error::Decode { .. }));
        assert!(err.to_string().contains("after 50 pages"), "{err}");
    }

    #[test]
    fn a_fetch_error_ends_the_stream() {
        let fetch = |offset: u64, _limit| {
            std::future::ready(if offset == 0 {
                Ok(Page::new(vec![0]).with_total(3))
            } else {
                Err(Error::api("t", 503, None, "down"))
            })
        };
        let results: Vec<Result<u64>> = run(Paginator::new("t").stream(fetch).collect());
        assert_eq!(results.len(), 2);
        assert_eq!(results[1].as_ref().unwrap_err().status(), Some(503));
    }
}
