//! Resuming a download: the `Range` asked for, the `Content-Range` answered, and what to do
//! with a response (append, restart, done, start over, fail). Pure, no I/O.

/// The `Range` header that resumes a download after `offset` bytes.
pub fn range_header(offset: u64) -> String {
    format!("bytes={offset}-")
}

/// A parsed `Content-Range`: `bytes START-END/TOTAL` (a range) or `bytes */TOTAL` (416).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRange {
    /// First and last byte sent, `None` for the `*` form.
    pub range: Option<(u64, u64)>,
    /// Length of the whole file, `None` when the server wrote `*`.
    pub total: Option<u64>,
}

/// Parses a `Content-Range` header value; `None` if malformed.
pub fn parse_content_range(value: &str) -> Option<ContentRange> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    let range = match range.trim() {
        "*" => None,
        r => {
            let (a, b) = r.split_once('-')?;
            let (a, b): (u64, u64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            (a <= b).then_some((a, b))?;
            Some((a, b))
        }
    };
    Some(ContentRange { range, total })
}

/// What to do with a response to a request for the file from byte `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumePlan {
    /// Append the body to the partial file; the whole file has `total` bytes if known.
    Append { total: Option<u64> },
    /// Write the body from byte 0 (the server ignored or botched the range).
    Restart { total: Option<u64> },
    /// The partial file is already complete (416 naming exactly `offset` bytes).
    Complete,
    /// Drop the partial file and ask again without a range (416 for another length).
    StartOver,
    /// An HTTP status that is not a success.
    Fail(u16),
}

/// Decides from the status, `Content-Range` and `Content-Length` how to use a response to a
/// request that asked for the file from byte `offset` (0: no `Range` header was sent).
pub fn resume_plan(
    offset: u64,
    status: u16,
    content_range: Option<&str>,
    content_length: Option<u64>,
) -> ResumePlan {
    let cr = content_range.and_then(parse_content_range);
    match status {
        200 => ResumePlan::Restart {
            total: content_length,
        },
        206 => match cr {
            Some(ContentRange {
                range: Some((start, _)),
                total,
            }) if start == offset => ResumePlan::Append { total },
            // A range that starts elsewhere cannot be appended: ask again for all of it.
            _ => ResumePlan::StartOver,
        },
        416 if offset > 0 => match cr.and_then(|c| c.total) {
            Some(total) if total == offset => ResumePlan::Complete,
            _ => ResumePlan::StartOver,
        },
        s => ResumePlan::Fail(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_forms() {
        assert_eq!(range_header(100), "bytes=100-");
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some(ContentRange {
                range: Some((100, 199)),
                total: Some(200)
            })
        );
        assert_eq!(
            parse_content_range("bytes 0-9/*"),
            Some(ContentRange {
                range: Some((0, 9)),
                total: None
            })
        );
        assert_eq!(
            parse_content_range("bytes */200"),
            Some(ContentRange {
                range: None,
                total: Some(200)
            })
        );
        for bad in [
            "",
            "bytes",
            "bytes 5-4/10",
            "items 0-1/2",
            "bytes 0-x/2",
            "bytes 0-1",
        ] {
            assert_eq!(parse_content_range(bad), None, "{bad}");
        }
    }

    #[test]
    fn resume_plans() {
        use ResumePlan::*;
        assert_eq!(
            resume_plan(0, 200, None, Some(10)),
            Restart { total: Some(10) }
        );
        assert_eq!(
            resume_plan(5, 200, None, Some(10)),
            Restart { total: Some(10) },
            "a server that ignores Range restarts the file"
        );
        assert_eq!(
            resume_plan(5, 206, Some("bytes 5-9/10"), Some(5)),
            Append { total: Some(10) }
        );
        assert_eq!(resume_plan(5, 206, Some("bytes 0-9/10"), None), StartOver);
        assert_eq!(resume_plan(5, 206, None, None), StartOver);
        assert_eq!(resume_plan(10, 416, Some("bytes */10"), None), Complete);
        assert_eq!(resume_plan(12, 416, Some("bytes */10"), None), StartOver);
        assert_eq!(resume_plan(0, 416, None, None), Fail(416));
        assert_eq!(resume_plan(0, 404, None, None), Fail(404));
    }
}
