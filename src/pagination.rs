//! Page numbers from query strings, bounded before any arithmetic touches
//! them: a user's number is never multiplied unchecked.

/// The highest page any list serves; past it a list is empty anyway, and the
/// bound keeps `(page - 1) * per_page` far from overflow.
pub const MAX_PAGE: i64 = 100_000;

/// A query string that names only a page (`?page=N`).
#[derive(Debug, Default, serde::Deserialize)]
pub struct PageQuery {
    pub page: Option<i64>,
}

impl PageQuery {
    /// The page asked for, bounded (see [`page_number`]).
    pub fn number(&self) -> i64 {
        page_number(self.page)
    }
}

/// The page asked for, as a number from 1 to [`MAX_PAGE`].
pub fn page_number(raw: Option<i64>) -> i64 {
    raw.unwrap_or(1).clamp(1, MAX_PAGE)
}

/// The rows to skip before `page` (bounded again here, so a caller that did
/// not clamp still cannot overflow).
pub fn offset(page: i64, per_page: i64) -> i64 {
    (page_number(Some(page)) - 1).saturating_mul(per_page.max(0))
}

/// How many pages `total` rows make at `per_page` a page (at least one).
pub fn page_count(total: i64, per_page: i64) -> i64 {
    let per_page = per_page.max(1);
    (total.max(0) / per_page + i64::from(total % per_page > 0)).clamp(1, MAX_PAGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_numbers_are_clamped_to_a_safe_range() {
        assert_eq!(page_number(None), 1);
        assert_eq!(page_number(Some(0)), 1);
        assert_eq!(page_number(Some(-5)), 1);
        assert_eq!(page_number(Some(i64::MAX)), MAX_PAGE);
        assert_eq!(page_number(Some(i64::MIN)), 1);
    }

    #[test]
    fn offsets_never_overflow() {
        assert_eq!(offset(1, 50), 0);
        assert_eq!(offset(3, 50), 100);
        assert_eq!(offset(i64::MAX, 50), (MAX_PAGE - 1) * 50);
        assert_eq!(offset(2, i64::MAX), i64::MAX);
    }

    #[test]
    fn page_counts_round_up_and_are_at_least_one() {
        assert_eq!(page_count(0, 50), 1);
        assert_eq!(page_count(50, 50), 1);
        assert_eq!(page_count(51, 50), 2);
        assert_eq!(page_count(i64::MAX, 50), MAX_PAGE);
    }
}
