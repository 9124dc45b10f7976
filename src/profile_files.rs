//! Every file under `profiles/`, compiled in by `build.rs`: a profile's catalogue entry,
//! `profile.toml`, guide texts and step files, read by their path under `profiles/`.

/// `(path under profiles/, text)`, sorted by path.
pub static FILES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/profile_files.rs"));

/// The text of `profiles/<path>`, if there is such a file.
pub fn get(path: &str) -> Option<&'static str> {
    FILES
        .binary_search_by(|(p, _)| (*p).cmp(path))
        .ok()
        .map(|i| FILES[i].1)
}

/// The text of `profiles/<path>`, a file `lab` itself names: its absence is a bug in `lab`
/// (the golden tests read every one).
pub fn expect(path: &str) -> &'static str {
    get(path).unwrap_or_else(|| panic!("profiles/{path} is not compiled in"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_under_profiles_is_there_by_its_path() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
        let on_disk = std::fs::read_to_string(root.join("debian12/profile.toml")).unwrap();
        assert_eq!(get("debian12/profile.toml"), Some(on_disk.as_str()));
        assert_eq!(get("debian12/no-such-file"), None);
        assert!(FILES.windows(2).all(|w| w[0].0 < w[1].0), "sorted");
    }
}
