//! Shell quoting: the one helper that turns any value into a single literal bash word.
//!
//! A bottom module: both `ssh` (the commands it runs on the host and the guests) and
//! `provision` (the scripts of every step) build on it, and it imports nothing of the crate.

/// Quotes a value for bash so it stays one literal word, whatever it holds. Every non-secret
/// value interpolated into a script (address, URL, CIDR, host, package, path) goes through it.
pub fn quote(value: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_-./:,@%+".contains(c);
    if !value.is_empty() && value.chars().all(safe) {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

/// Quotes each value and joins them with spaces.
pub fn quote_all(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| quote(v))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// What bash makes of `printf %s <quoted>`, and how many words it saw.
    fn round_trip(value: &str) -> (String, String) {
        let q = quote(value);
        let out = Command::new("bash")
            .args([
                "-c",
                &format!("printf %s {q}; printf '\\0'; set -- {q}; printf %s $#"),
            ])
            .output()
            .expect("bash runs");
        assert!(out.status.success(), "{q}: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let (word, count) = text.split_once('\0').unwrap();
        (word.to_string(), count.to_string())
    }

    #[test]
    fn safe_values_stay_readable() {
        assert_eq!(quote("10.0.0.0/24"), "10.0.0.0/24");
        assert_eq!(
            quote("https://vault.centos.org/7.9.2009"),
            "https://vault.centos.org/7.9.2009"
        );
        assert_eq!(quote("python2-PyMySQL"), "python2-PyMySQL");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("a=b"), "'a=b'");
        assert_eq!(quote("~root"), "'~root'");
    }

    #[test]
    fn hostile_values_stay_one_literal_word() {
        let hostile = [
            "",
            " ",
            "a b",
            "$(touch /tmp/lab-quote-pwned)",
            "`id`",
            "$HOME",
            "${PATH}",
            "'",
            "''",
            "a'b\"c",
            "\\",
            "\\'",
            "*",
            "?[a]",
            "{a,b}",
            "~",
            "a;b|c&d",
            "line\nbreak",
            "tab\there",
            "!!",
            "-n",
            "x=1",
            "#comment",
            "é ü ∀",
            "<(echo hi)",
            ">/tmp/lab-quote-pwned",
        ];
        for value in hostile {
            let (word, count) = round_trip(value);
            assert_eq!(word, value, "quoted as {}", quote(value));
            assert_eq!(count, "1", "{value:?} quoted as {}", quote(value));
        }
        assert!(!std::path::Path::new("/tmp/lab-quote-pwned").exists());
    }
}
